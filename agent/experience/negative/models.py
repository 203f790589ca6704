"""The 负面体验 record (guide §7.4): one row per conversation that went wrong, with every cause seen.

In the agent's tables (`AgentBase`, the agent's Alembic chain, revision 0002negative): the agent
detects the experience and offers the remedy, so it owns the record. Customers are referred to by
`account_no` string, like the conversation records.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from agent.models import AgentBase
from billing_core.db.engine import utc_now


class RemedyStatus(StrEnum):
    OFFERED = "offered"  # asked in the conversation, no answer yet
    ACCEPTED = "accepted"  # the customer said yes
    DECLINED = "declined"  # the customer said no
    APPLIED = "applied"  # given without asking (the conversation was already with a person)
    PENDING = "pending"  # found in the records with no conversation to ask in: staff offer it


class NegativeExperience(AgentBase):
    """A negative customer experience: its causes as they happened, the remedy and its answer."""

    __tablename__ = "agent_negative_experiences"
    __table_args__ = (Index("ix_agent_negative_experiences_opened_at", "opened_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str | None] = mapped_column(String(12))
    cause: Mapped[str] = mapped_column(String(32))  # the first cause (remedies.yaml `causes`)
    causes: Mapped[list[str]] = mapped_column(JSON, default=list)  # every cause, first seen first
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # {cause, at, detail} (masked)
    remedy: Mapped[str | None] = mapped_column(String(32))
    remedy_status: Mapped[str | None] = mapped_column(String(16))
    remedy_due_at: Mapped[datetime | None] = mapped_column()  # a call-back / review promised by then
    remedy_answered_at: Mapped[datetime | None] = mapped_column()
    opened_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
