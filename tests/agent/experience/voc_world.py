"""Conversation and turn records written straight into the test world's database, for the VOC tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from agent.models import ConversationRecord, Outcome, TurnRecord


def add_conversation(session: Session, conversation_id: str, *, started_at: datetime, texts: list[str],
                     channel: str = "web", account_no: str | None = None, outcome: Outcome | None = Outcome.RESOLVED,
                     csat: int | None = None, intents: list[str] | None = None, topic: str | None = None,
                     latency_ms: int = 800, minutes: int = 3) -> ConversationRecord:
    record = ConversationRecord(conversation_id=conversation_id, channel=channel, account_no=account_no, brain="local",
                                topic=topic, intents=intents or [], tickets=[], outcome=outcome,
                                turn_count=len(texts), csat_score=csat, csat_label=None if csat is None else str(csat),
                                started_at=started_at, ended_at=started_at + timedelta(minutes=minutes))
    session.add(record)
    session.flush()
    for position, text in enumerate(texts, 1):
        session.add(TurnRecord(conversation_pk=record.id, position=position, brain="local", user_text=text,
                               reply_text="好的", intents=intents or [], tool_calls=[], citations=[],
                               latency_ms=latency_ms, created_at=started_at + timedelta(seconds=30 * position)))
    return record
