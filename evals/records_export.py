"""Copy the eval's conversation records into a PowerDesk database, so `powerdesk kpi report`
(which reads `agent_conversations` / `agent_turns`) has data after an eval run.

Each scenario ran in its own throw-away database; the rows are re-inserted here under a run id
prefix, so running the suite twice never collides on `conversation_id`.
"""

from __future__ import annotations

from typing import Any

from billing_core.db.engine import make_engine


class ExportError(RuntimeError):
    """The target database cannot take the records (not migrated)."""


def check_target(url: str) -> None:
    """Refuse, before the suite runs, a database without the agent's record tables."""
    from pathlib import Path

    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        raise ExportError(f"export-records: {url} 不存在，请先运行 powerdesk db upgrade")  # don't create it
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if not {"agent_conversations", "agent_turns"} <= tables:
        raise ExportError(f"export-records: {url} 还没有会话记录表，请先运行 powerdesk db upgrade")


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
