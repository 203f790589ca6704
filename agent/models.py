"""The agent's records: every conversation and every turn, for KPIs, audits and evals.

Built on billing's `Base` with an own MetaData and an own Alembic chain (`alembic_version_agent`).
Customers are referred to by `account_no` string, never by a foreign key into billing's tables.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from billing_core.db.engine import NAMING_CONVENTION, Base, utc_now
from billing_core.db.models import _enum


class AgentBase(Base):
    """billing_core's `Base` (same type map and naming convention) with the agent's tables in their
    own `MetaData`, so billing's schema and Alembic chain never see them (and vice versa)."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Outcome(StrEnum):
    RESOLVED = "resolved"  # answered by the agent itself
    TICKET = "ticket"  # a dispute or complaint ticket was opened
    TRANSFERRED = "transferred"  # handed to a person or another desk
    ABANDONED = "abandoned"  # the customer left before anything was settled


class ConversationRecord(AgentBase):
    """One conversation: who, where, which brain, how it ended and how the customer rated it."""

    __tablename__ = "agent_conversations"
    __table_args__ = (Index("ix_agent_conversations_account_started", "account_no", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str | None] = mapped_column(String(12))
    brain: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str | None] = mapped_column(String(64))  # the first task intent, for repeat contacts
    intents: Mapped[list[str]] = mapped_column(JSON, default=list)
    tickets: Mapped[list[str]] = mapped_column(JSON, default=list)
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome))
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    csat_score: Mapped[int | None] = mapped_column(Integer)  # 1..5
    csat_label: Mapped[str | None] = mapped_column(String(16))  # 满意 / 一般 / 不满意 / the digit
    csat_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    ended_at: Mapped[datetime | None] = mapped_column()

    turns: Mapped[list[TurnRecord]] = relationship(back_populates="conversation",
                                                   order_by="TurnRecord.position")


class TurnRecord(AgentBase):
    """One user message and the agent's reply, with the tool calls and citations behind it."""

    __tablename__ = "agent_turns"
    # A message id is recorded once per conversation (resends after a lost answer, see
    # agent.records); NULL ids (staff messages) are distinct, so any number of them is allowed.
    # Led by conversation_pk, it also serves every lookup of a conversation's turns.
    __table_args__ = (Index("uq_agent_turns_conversation_message", "conversation_pk", "message_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_pk: Mapped[int] = mapped_column(ForeignKey("agent_conversations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(128))
    brain: Mapped[str] = mapped_column(String(16))
    user_text: Mapped[str] = mapped_column(Text)
    reply_text: Mapped[str] = mapped_column(Text)
    intents: Mapped[list[str]] = mapped_column(JSON, default=list)
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    grounded: Mapped[bool] = mapped_column(Boolean, default=True)
    violations: Mapped[list[str]] = mapped_column(JSON, default=list)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    conversation: Mapped[ConversationRecord] = relationship(back_populates="turns")


AGENT_TABLES: frozenset[str] = frozenset(AgentBase.metadata.tables)
