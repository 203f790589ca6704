"""The tools layer's own tables: audit events, identity attempts and lock-outs, verified
sessions and hand-off requests. Built on billing's `Base`, kept in their own MetaData and
migrated by their own Alembic chain (`tools/migrations`).

Customers are referred to by `account_no` string (never a foreign key into billing's tables),
as the conventions require for upper layers. Identity attempts keep the *claimed* account number
even when no such customer exists, so a stranger probing numbers is throttled exactly like one
guessing the phone tail of a real account, and learns nothing from the difference.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from billing_core.db.engine import NAMING_CONVENTION, Base, utc_now
from billing_core.db.models import _enum


class ToolsBase(Base):
    """billing_core's `Base` (same registry, type map and naming convention) with the tools
    tables in their own `MetaData`: billing's schema, and its Alembic chain, never see them."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class VerificationMethod(StrEnum):
    ACCOUNT_SECRET = "account_secret"  # 户号 + 登记手机号/身份证后4位
    WECHAT_OPENID = "wechat_openid"  # 已绑定户号的微信
    HOTLINE = "hotline"  # 来电号码 + 核对问题（用电地址所在道路）


class LockScope(StrEnum):
    CONVERSATION = "conversation"
    ACCOUNT = "account"
    SOURCE = "source"  # one caller number / openid / web address trying many 户号


class HandoffStatus(StrEnum):
    WAITING = "waiting"
    ACCEPTED = "accepted"
    CLOSED = "closed"


class AuditEvent(ToolsBase):
    """One tool call: who asked, with what (secrets redacted), and what came back."""

    __tablename__ = "tool_audit_events"
    __table_args__ = (
        Index("ix_tool_audit_events_conversation_id", "conversation_id"),
        Index("ix_tool_audit_events_account_no", "account_no"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tool: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str | None] = mapped_column(String(12))  # the verified principal, if any
    verified_by: Mapped[str | None] = mapped_column(String(32))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32))  # the result's status, or "error"
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class IdentityAttempt(ToolsBase):
    """One identity check, passed or failed (the basis of the attempt limits)."""

    __tablename__ = "identity_attempts"
    __table_args__ = (
        Index("ix_identity_attempts_conversation_id", "conversation_id"),
        Index("ix_identity_attempts_claimed_account_at", "claimed_account", "attempted_at"),
        Index("ix_identity_attempts_source_at", "source", "attempted_at"),
        # One attempt per answer per message: a message run again reuses its row, not a second guess.
        Index("uq_identity_attempts_conversation_message", "conversation_id", "message_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(32))
    method: Mapped[VerificationMethod] = mapped_column(_enum(VerificationMethod))
    claimed_account: Mapped[str | None] = mapped_column(String(32))  # as given, may not exist
    success: Mapped[bool] = mapped_column(Boolean)
    # The answer was right but an active lock refused it: not a wrong answer, so not counted.
    refused_by_lock: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Where it came from (`ToolContext.guess_source`: channel + caller number / openid / web address).
    source: Mapped[str | None] = mapped_column(String(128))
    # A digest of the client's message id and the answer checked (`verify_identity.message_key`);
    # None when the call came with no message id.
    message_key: Mapped[str | None] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(default=utc_now)


class IdentityLock(ToolsBase):
    """A lock-out of a conversation or of a claimed account number, until `locked_until`
    (durations in service_policy.yaml; `tools.identity_locks` lists them for staff)."""

    __tablename__ = "identity_locks"
    __table_args__ = (Index("ix_identity_locks_scope_key", "scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[LockScope] = mapped_column(_enum(LockScope))
    key: Mapped[str] = mapped_column(String(128))
    locked_at: Mapped[datetime] = mapped_column(default=utc_now)
    locked_until: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200))


class IdentityLockLift(ToolsBase):
    """Staff lifted a lock early (the customer proved who they are at a counter or to an agent).

    The lock row stays, its `locked_until` moved to the lift (so the repeat-doubling rule still
    counts it); `was_locked_until` keeps the end it had. The wrong answers stay on record, but
    those up to `attempts_before` (an `identity_attempts.id`) no longer count towards the same
    scope and key: otherwise the next slip would lock the customer out again at once.
    """

    __tablename__ = "identity_lock_lifts"
    __table_args__ = (
        UniqueConstraint("lock_id"),
        Index("ix_identity_lock_lifts_scope_key", "scope", "key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_id: Mapped[int] = mapped_column(ForeignKey("identity_locks.id"))
    scope: Mapped[LockScope] = mapped_column(_enum(LockScope))
    key: Mapped[str] = mapped_column(String(128))
    lifted_at: Mapped[datetime] = mapped_column()
    lifted_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))
    was_locked_until: Mapped[datetime] = mapped_column()
    attempts_before: Mapped[int] = mapped_column(Integer)


class VerifiedSession(ToolsBase):
    """The verified principal of a conversation, kept server-side (a Rasa slot never authorizes)."""

    __tablename__ = "verified_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str] = mapped_column(String(12))
    method: Mapped[VerificationMethod] = mapped_column(_enum(VerificationMethod))
    verified_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()


class HandoffRequest(ToolsBase):
    """A conversation waiting for a human agent, with the summary the agent console shows."""

    __tablename__ = "handoff_requests"
    __table_args__ = (
        UniqueConstraint("no"),
        Index("ix_handoff_requests_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    no: Mapped[str] = mapped_column(String(20))  # 'HO' + YYYYMMDD + 4-digit sequence
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    account_no: Mapped[str | None] = mapped_column(String(12))  # only when verified
    reason: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[HandoffStatus] = mapped_column(_enum(HandoffStatus), default=HandoffStatus.WAITING)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


TOOLS_TABLES: frozenset[str] = frozenset(ToolsBase.metadata.tables)
