"""`open_dispute`: a 电费异议 work order for one bill of the verified customer, with the promised
response times of the service policy (contact within 1 working day, answer within 5).

One open dispute per bill: a second request while one is open is refused and names the open one
(the customer is told where their dispute stands rather than getting a twin that splits the work).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_core.db.models import Bill, WorkOrder, WorkOrderKind, WorkOrderPriority, WorkOrderStatus
from tools.account_view import CustomerView, visible_bills
from tools.context import ToolContext
from tools.periods import Period
from tools.results import NotFound, ToolResult
from tools.work_orders import add_work_order, is_open_dispute_clash


class DisputeCategory(StrEnum):
    AMOUNT_TOO_HIGH = "amount_too_high"  # 电费偏高
    READING_WRONG = "reading_wrong"  # 读数/电量不对
    TARIFF_WRONG = "tariff_wrong"  # 电价、类别、倍率用错
    BACK_CHARGE = "back_charge"  # 退补有异议
    LATE_FEE = "late_fee"  # 违约金有异议
    DUPLICATE_PAYMENT = "duplicate_payment"  # 重复缴费/扣款
    OTHER = "other"


CATEGORY_CN = {
    "amount_too_high": "电费偏高", "reading_wrong": "读数或电量有误", "tariff_wrong": "电价或计费类别有误",
    "back_charge": "退补电费有异议", "late_fee": "违约金有异议", "duplicate_payment": "重复缴费",
    "other": "其他电费异议",
}
OPEN_STATUSES = (WorkOrderStatus.OPEN, WorkOrderStatus.IN_PROGRESS)


class OpenDisputeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Period
    category: DisputeCategory = Field(description="异议类别")
    reason: str = Field(min_length=2, max_length=1000, description="客户说明的理由（原话）")


class DisputeOpened(ToolResult):
    status: Literal["opened"] = "opened"
    ticket_no: str
    period: str
    bill_no: str | None
    category: DisputeCategory
    created_at: datetime
    contact_due_at: datetime
    answer_due_at: datetime
    commitment: str


class DuplicateDispute(ToolResult):
    status: Literal["duplicate"] = "duplicate"
    open_ticket_no: str
    period: str
    opened_at: datetime
    answer_due_at: datetime | None
    # This conversation opened it: a resend whose first attempt committed the ticket but not its
    # turn (the agent then records the ticket with this turn), or the customer asking twice.
    opened_here: bool = False


def _first_open_dispute(session: Session, bill_id: int) -> WorkOrder | None:
    return session.scalar(select(WorkOrder).where(
        WorkOrder.kind == WorkOrderKind.DISPUTE, WorkOrder.bill_id == bill_id,
        WorkOrder.status.in_(OPEN_STATUSES)).order_by(WorkOrder.id).limit(1))


def _duplicate(existing: WorkOrder, period: str, ctx: ToolContext) -> DuplicateDispute:
    answer_due = (existing.payload or {}).get("answer_due_at")
    return DuplicateDispute(
        open_ticket_no=existing.no, period=period, opened_at=existing.created_at,
        answer_due_at=datetime.fromisoformat(answer_due) if answer_due else None,
        opened_here=(existing.payload or {}).get("conversation_id") == ctx.conversation_id,
        message=f"{period} 账单已有一张处理中的电费异议工单 {existing.no}"
                f"（{existing.created_at.astimezone(ctx.policy.zone):%Y-%m-%d %H:%M} 受理），无需重复提交，"
                f"我们会按承诺时限联系您。",
    )


def open_dispute(ctx: ToolContext, session: Session, customer: CustomerView,
                 args: OpenDisputeInput) -> ToolResult:
    policy = ctx.policy
    now = ctx.now()
    bills = visible_bills(session, customer, period=args.period)
    if not bills:
        return NotFound(message=f"没有查到 {args.period} 的已发行账单，无法对该月发起电费异议。")
    # Lock the bill row (PostgreSQL) so two simultaneous requests cannot both pass the check.
    bill = session.scalar(select(Bill).where(Bill.id == bills[0].id).with_for_update())
    assert bill is not None
    existing = _first_open_dispute(session, bill.id)
    if existing is not None:
        return _duplicate(existing, bill.period, ctx)
    contact_due = policy.add_working_days(now, policy.dispute.contact_working_days)
    answer_due = policy.add_working_days(now, policy.dispute.answer_working_days)
    label = CATEGORY_CN[args.category.value]
    try:
        order = add_work_order(
            session, now.astimezone(policy.zone),
            kind=WorkOrderKind.DISPUTE, account_no=customer.account_no, bill_id=bill.id,
            period=bill.period,
            status=WorkOrderStatus.OPEN, priority=WorkOrderPriority.NORMAL,
            title=f"电费异议：{bill.period} {label}", description=args.reason, contact=customer.phone,
            channel=ctx.channel, sla_due_at=contact_due, created_at=now,
            payload={"category": args.category.value, "conversation_id": ctx.conversation_id,
                     "contact_due_at": contact_due.isoformat(), "answer_due_at": answer_due.isoformat(),
                     "policy": policy.version},
        )
    except IntegrityError as exc:
        # The database's one-open-dispute-per-bill index refused a twin opened at the same
        # moment (SQLite has no row locks to stop it earlier): answer with the one that stands.
        if not is_open_dispute_clash(exc):
            raise
        session.rollback()
        existing = _first_open_dispute(session, bill.id)
        assert existing is not None
        return _duplicate(existing, bill.period, ctx)
    session.commit()
    return DisputeOpened(
        ticket_no=order.no, period=bill.period, bill_no=bill.bill_no, category=args.category,
        created_at=now, contact_due_at=contact_due, answer_due_at=answer_due,
        commitment=policy.dispute.commitment,
        message=f"已受理您对 {bill.period} 账单的电费异议（{label}），工单号 {order.no}。"
                f"我们将在 {contact_due:%Y-%m-%d %H:%M} 前联系您核实，{answer_due:%Y-%m-%d %H:%M} 前答复结果。",
    )
