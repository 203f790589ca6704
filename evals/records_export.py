"""Copy the eval's conversation records into a PowerDesk database, so `powerdesk kpi report`
(which reads `agent_conversations` / `agent_turns`) has data after an eval run.

Each scenario ran in its own throw-away database; the rows are re-inserted here under a run id
prefix, so running the suite twice never collides on `conversation_id`.
"""

from __future__ import annotations

from typing import Any

from billing_core.db import make_engine


def export_records(records: list[dict[str, Any]], url: str, run_id: str) -> int:
    """Insert the records into the database at `url` (migrated by `powerdesk db upgrade`); returns
    how many conversations were written."""
    from sqlalchemy.orm import Session

    from agent.models import ConversationRecord, TurnRecord

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            for record in records:
                fields = {k: v for k, v in record.items() if k != "turns"}
                fields["conversation_id"] = f"{run_id}:{fields['conversation_id']}"[:128]
                conversation = ConversationRecord(**fields)
                conversation.turns = [TurnRecord(**turn) for turn in record.get("turns", [])]
                session.add(conversation)
            session.commit()
    finally:
        engine.dispose()
    return len(records)
