"""Who a tool runs for: the verified `Principal` of a conversation, held in a `ToolContext`.

Authorization lives here, not in the prompt. Billing tools read the account number from
`ctx.principal`, never from their arguments or the user's text, so a 户号 typed into a message
(or slipped into a tool call by a model) cannot widen access. The principal is set only by
`verify_identity` and kept server-side (`verified_sessions`), keyed by the conversation id;
the Rasa action server restores it from there, so a slot value alone never authorizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from billing_core.db.engine import utc_now
from tools.channels import ChannelSpec, channel_spec
from tools.models import VerificationMethod, VerifiedSession
from tools.service_policy import ServicePolicy, load_policy

if TYPE_CHECKING:
    from knowledge_base.retriever import KnowledgeRetriever

# Built once; a plain-table read on the session's connection (no ORM compile or loading step).
_STORED = VerifiedSession.__table__.c
_STORED_PRINCIPAL = select(_STORED.channel, _STORED.account_no, _STORED.method, _STORED.verified_at,
                           _STORED.expires_at).where(_STORED.conversation_id == bindparam("conversation_id"))


class Principal(BaseModel):
    """A verified customer: the only account a conversation's billing tools may touch."""

    model_config = ConfigDict(frozen=True)

    account_no: str
    method: VerificationMethod
    verified_at: datetime
    expires_at: datetime


class ServiceLevel(Protocol):
    """A customer's differentiated service (guide §8.7), decided above the tools by the customer's
    classes and habits (`agent.experience`): a shorter complaint contact time, a named queue, the
    channel to answer on — or none of them."""

    @property
    def complaint_contact_hours(self) -> int | None: ...

    @property
    def complaint_queue(self) -> str | None: ...

    policy_version: str
    preferred_channel: str | None  # answer there (e.g. wechat), None: on the channel asked
    preferred_channel_message: str | None

    def names(self) -> list[str]: ...


@dataclass
class ToolContext:
    """Everything a tool call needs besides its arguments.

    `channel_identity` comes from the channel's envelope, never from the user's words: the
    openid WeChat attaches to a message, or the caller number (ANI) of a hotline call — whatever
    the channel's spec (`tools.channels`) names as its `identity_key`.
    """

    conversation_id: str
    channel: str
    session_factory: Callable[[], Session]
    principal: Principal | None = None
    channel_identity: str | None = None
    clock: Callable[[], datetime] = utc_now
    policy: ServicePolicy = field(default_factory=load_policy)
    knowledge: Callable[[], KnowledgeRetriever] | None = None
    # When a list, audit rows are collected here and the caller (the agent, once per turn) writes
    # them in the same transaction as the turn record; None writes each row at once.
    pending_audit: list[dict[str, Any]] | None = None
    # The verified customer's service level (session, 户号 -> level), supplied by the agent; the
    # tools ask it only for the principal's own account. None: everyone is served the same way.
    service_level: Callable[[Session, str], ServiceLevel] | None = None
    # Where the messages come from as the channel knows it when that is not an identity it vouches
    # for (the web page's client address); None: the envelope identity (openid, caller number).
    # Only for counting guesses per source (`verify_identity`), never a proof of anything.
    source: str | None = None
    # The client's id of the message this call answers (WeChat MsgId, the web's message_id): a
    # message run again — its first run's reply lost with a replica — must not repeat its effects
    # (`verify_identity` counts its wrong answer once). None: every call is a new one.
    message_id: str | None = None

    def __post_init__(self) -> None:
        if not self.conversation_id or not self.conversation_id.strip():
            raise ValueError("conversation_id: must not be empty")
        channel_spec(self.channel)  # UnknownChannel (a ValueError) names the field

    @property
    def spec(self) -> ChannelSpec:
        return channel_spec(self.channel)

    def allows(self, method: VerificationMethod | str) -> bool:
        """Whether this conversation may verify with `method`: its channel allows it and, for a
        check on the envelope's identity, the envelope carried one."""
        if not self.spec.allows(method):
            return False
        return VerificationMethod(method) == VerificationMethod.ACCOUNT_SECRET or bool(self.channel_identity)

    @property
    def guess_source(self) -> str | None:
        """The key identity checks are counted under per source: channel and the address or
        envelope identity (`web:203.0.113.7`, `ivr:13800138000`, `wechat:o_…`), or None."""
        value = self.source or self.channel_identity
        return f"{self.channel}:{value.strip()}"[:128] if value and value.strip() else None

    def now(self) -> datetime:
        """The current time (aware, UTC); tests pass a fixed clock."""
        value = self.clock()
        if value.tzinfo is None:
            raise ValueError("clock: must return a timezone-aware datetime")
        return value

    def today(self) -> date:
        """Today's date where the utility is (due dates and late fees count local days)."""
        return self.now().astimezone(self.policy.zone).date()

    def verified(self) -> Principal | None:
        """The principal if still valid now (a verification lasts `session_minutes`)."""
        if self.principal is not None and self.principal.expires_at <= self.now():
            self.principal = None
        return self.principal

    def restore_principal(self) -> Principal | None:
        """Load the conversation's principal from the database (server-side session store)."""
        with self.session_factory() as session:
            row = session.connection().execute(
                _STORED_PRINCIPAL, {"conversation_id": self.conversation_id}).first()
            if row is None or row.channel != self.channel or row.expires_at <= self.now():
                self.principal = None
            else:
                self.principal = Principal(
                    account_no=row.account_no, method=row.method,
                    verified_at=row.verified_at, expires_at=row.expires_at,
                )
        return self.principal
