"""Read conversations back from the agent's records (the durable, server-side copy).

The web page reconnects with only a conversation id in localStorage; the staff console shows
live and recent conversations. Both read the same rows the agent wrote, so any app process can
serve them and a restart loses nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import session_scope


class TranscriptTurn(BaseModel):
    position: int
    user_text: str
    reply_text: str
    citations: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    brain: str = ""  # "local" / "llm", or "staff" for what a person wrote while holding the conversation
    created_at: datetime


class ConversationSummary(BaseModel):
    conversation_id: str
    channel: str
    account_no: str | None
    outcome: str | None
    turn_count: int
    csat_score: int | None
    started_at: datetime
    ended_at: datetime | None
    last_text: str = ""


class Transcript(ConversationSummary):
    turns: list[TranscriptTurn] = []


def _summary(record: ConversationRecord) -> dict[str, Any]:
    return {
        "conversation_id": record.conversation_id,
        "channel": record.channel,
        "account_no": record.account_no,
        "outcome": None if record.outcome is None else str(record.outcome),
        "turn_count": record.turn_count,
        "csat_score": record.csat_score,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
    }


def load_transcript(conversation_id: str, channel: str | None = None) -> Transcript | None:
    """The conversation's transcript; with `channel`, only if the conversation belongs to it."""
    with session_scope() as session:
        query = select(ConversationRecord).where(ConversationRecord.conversation_id == conversation_id)
        if channel is not None:
            query = query.where(ConversationRecord.channel == channel)
        record = session.scalar(query.options(selectinload(ConversationRecord.turns)))
        if record is None:
            return None
        turns = [
            TranscriptTurn(position=t.position, user_text=t.user_text, reply_text=t.reply_text,
                           citations=list(t.citations or []), tool_calls=list(t.tool_calls or []),
                           brain=t.brain, created_at=t.created_at)
            for t in record.turns
        ]
        last = turns[-1].reply_text if turns else ""
        return Transcript(**_summary(record), last_text=last, turns=turns)


def recent_conversations(limit: int = 50, channel: str | None = None) -> list[ConversationSummary]:
    with session_scope() as session:
        query = select(ConversationRecord).order_by(ConversationRecord.started_at.desc()).limit(limit)
        if channel:
            query = query.where(ConversationRecord.channel == channel)
        records = list(session.scalars(query))
        summaries = []
        for record in records:
            last_turn = session.scalar(
                select(TurnRecord).where(TurnRecord.conversation_pk == record.id)
                .order_by(TurnRecord.position.desc()).limit(1)
            )
            summaries.append(ConversationSummary(**_summary(record),
                                                 last_text=last_turn.user_text if last_turn else ""))
        return summaries

