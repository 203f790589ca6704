"""`transfer_to_human`: put the conversation in the human agents' queue with a summary.

Needs no verification (a locked-out or unverified caller must still reach a person). The
request is stored (`handoff_requests`) for the channels' agent console to list; a second
request in the same conversation while one is waiting returns the waiting one.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tools.context import ToolContext
from tools.models import HandoffRequest, HandoffStatus
from tools.results import ToolResult


class HandoffReason(StrEnum):
    CUSTOMER_ASKED = "customer_asked"  # 客户要求转人工
    VERIFICATION_LOCKED = "verification_locked"  # 身份核实多次失败
    OUT_OF_SCOPE = "out_of_scope"  # 停电报修、业扩报装等智能客服办不了的事
    NOT_UNDERSTOOD = "not_understood"  # 多次没能理解
    COMPLAINT_ESCALATION = "complaint_escalation"
    SYSTEM_ERROR = "system_error"


class TransferToHumanInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: HandoffReason = Field(description="转人工原因")
    summary: str = Field(min_length=1, max_length=2000,
                         description="给人工客服的简要小结：客户要办什么、已经查到什么、卡在哪里")


class HandoffCreated(ToolResult):
    status: Literal["transferred"] = "transferred"
    handoff_no: str
    queue_position: int  # waiting requests created before this one, plus one
    created_at: datetime


def _next_handoff_no(session: Session, when: datetime) -> str:
    prefix = f"HO{when:%Y%m%d}"
    last = session.scalar(select(func.max(HandoffRequest.no)).where(HandoffRequest.no.like(f"{prefix}%")))
    return f"{prefix}{(int(last[len(prefix):]) + 1 if last else 1):04d}"


def create_handoff(session: Session, ctx: ToolContext, reason: HandoffReason, summary: str,
                   payload: dict[str, object] | None = None) -> HandoffRequest:
    """Store a waiting hand-off (or return the conversation's waiting one); flushed, not committed."""
    waiting = session.scalar(
        select(HandoffRequest).where(
            HandoffRequest.conversation_id == ctx.conversation_id,
            HandoffRequest.status == HandoffStatus.WAITING,
        )
    )
    if waiting is not None:
        return waiting
    principal = ctx.verified()
    now = ctx.now()
    for _ in range(5):  # two writers racing for a number: the unique constraint decides, retry
        request = HandoffRequest(
            no=_next_handoff_no(session, now.astimezone(ctx.policy.zone)),
            conversation_id=ctx.conversation_id,
            channel=ctx.channel,
            account_no=principal.account_no if principal else None,
            reason=reason.value,
            summary=summary,
            status=HandoffStatus.WAITING,
            created_at=now,
            payload=dict(payload or {}),
        )
        try:
            with session.begin_nested():
                session.add(request)
            return request
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a hand-off number")


def transfer_to_human(ctx: ToolContext, args: TransferToHumanInput) -> HandoffCreated:
    with ctx.session_factory() as session:
        request = create_handoff(session, ctx, args.reason, args.summary)
        position = session.scalar(
            select(func.count()).select_from(HandoffRequest).where(
                HandoffRequest.status == HandoffStatus.WAITING, HandoffRequest.id <= request.id
            )
        ) or 1
        session.commit()
        return HandoffCreated(
            handoff_no=request.no,
            queue_position=int(position),
            created_at=request.created_at,
            message=f"已为您转接人工客服（转接单号 {request.no}），前面还有 {int(position) - 1} 位客户在等待，请稍候。",
        )


class WaitingHandoff(BaseModel):
    """A hand-off as the agent console lists it."""

    handoff_no: str
    conversation_id: str
    channel: str
    account_no: str | None
    reason: str
    summary: str
    created_at: datetime


def waiting_handoffs(session: Session, limit: int = 100) -> list[WaitingHandoff]:
    """Waiting hand-offs, oldest first (the agent console's queue)."""
    rows = session.scalars(select(HandoffRequest).where(HandoffRequest.status == HandoffStatus.WAITING)
                           .order_by(HandoffRequest.created_at, HandoffRequest.id).limit(limit))
    return [WaitingHandoff(handoff_no=r.no, conversation_id=r.conversation_id, channel=r.channel,
                           account_no=r.account_no, reason=r.reason, summary=r.summary,
                           created_at=r.created_at)
            for r in rows]


def held_by_staff(session: Session, conversation_id: str) -> bool:
    """Whether a person holds the conversation (its hand-off was accepted): the bot must not answer."""
    return session.scalar(select(HandoffRequest.id).where(
        HandoffRequest.conversation_id == conversation_id,
        HandoffRequest.status == HandoffStatus.ACCEPTED).limit(1)) is not None
