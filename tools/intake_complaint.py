"""`intake_complaint`: a complaint work order (T/CI 1281-2025 §8.8: convenient channels, quick
response, a standard process) with the service policy's commitments: contact within 24 hours
(2 hours when urgent, e.g. a safety matter), answer within 5 working days."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.models import WorkOrder, WorkOrderKind, WorkOrderPriority, WorkOrderStatus
from tools.account_view import CustomerView
from tools.context import ToolContext
from tools.results import ToolResult
from tools.work_orders import add_work_order


class ComplaintCategory(StrEnum):
    SERVICE_ATTITUDE = "service_attitude"  # 服务态度
    DELAY = "delay"  # 办事拖延
    DISPUTE_HANDLING = "dispute_handling"  # 异议处理结果不合理
    PROMISE_BROKEN = "promise_broken"  # 承诺没有兑现
    BILLING_ERROR = "billing_error"  # 电费差错
    OTHER = "other"


CATEGORY_CN = {"service_attitude": "服务态度", "delay": "办事拖延", "dispute_handling": "异议处理结果",
               "promise_broken": "承诺未兑现", "billing_error": "电费差错", "other": "其他"}
PHONE = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8})$")


class IntakeComplaintInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: ComplaintCategory = Field(description="投诉类别")
    description: str = Field(min_length=2, max_length=2000, description="投诉内容（客户原话）")
    contact: str | None = Field(default=None, description="回访电话；不填则用登记的手机号")
    urgent: bool = Field(default=False, description="是否紧急（如影响用电安全）")

    @field_validator("contact")
    @classmethod
    def _contact(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = re.sub(r"[\s]", "", value)
        if not PHONE.match(value):
            raise ValueError("请提供11位手机号或带区号的固定电话")
        return value


class DuplicateComplaint(ToolResult):
    """The same conversation already opened an open complaint of this category (a repeated call)."""

    status: Literal["duplicate"] = "duplicate"
    open_ticket_no: str
    opened_at: datetime
    opened_here: bool = True  # always this conversation's (see DuplicateDispute.opened_here)


class ComplaintOpened(ToolResult):
    status: Literal["opened"] = "opened"
    ticket_no: str
    category: ComplaintCategory
    urgent: bool
    created_at: datetime
    contact_due_at: datetime
    answer_due_at: datetime
    commitment: str
    queue: str | None = None  # the named 客户经理 queue of the customer's class, if it has one
    service_classes: list[str] = []  # the classes that set a shorter contact time or the queue


def _open_in_conversation(session: Session, ctx: ToolContext, account_no: str,
                          category: ComplaintCategory) -> WorkOrder | None:
    """An open complaint of `category` this conversation already opened (a model repeating a call)."""
    rows = session.scalars(select(WorkOrder).where(
        WorkOrder.kind == WorkOrderKind.COMPLAINT, WorkOrder.account_no == account_no,
        WorkOrder.status.in_((WorkOrderStatus.OPEN, WorkOrderStatus.IN_PROGRESS))).order_by(WorkOrder.id))
    for row in rows:
        payload = row.payload or {}
        if (payload.get("conversation_id"), payload.get("category")) == (ctx.conversation_id, category.value):
            return row
    return None


def intake_complaint(ctx: ToolContext, session: Session, customer: CustomerView,
                     args: IntakeComplaintInput) -> ToolResult:
    policy, now = ctx.policy, ctx.now()
    rules = policy.complaint
    hours = rules.urgent_contact_hours if args.urgent else rules.contact_hours
    level = ctx.service_level(session, customer.account_no) if ctx.service_level is not None else None
    class_hours = level.complaint_contact_hours if level is not None else None
    queue = level.complaint_queue if level is not None else None
    shortened = class_hours is not None and class_hours < hours
    if shortened:
        hours = class_hours  # the class's shorter SLA (classification.yaml), never a longer one
    contact_due = (now + timedelta(hours=hours)).astimezone(policy.zone)
    answer_due = policy.add_working_days(now, rules.answer_working_days)
    earlier = _open_in_conversation(session, ctx, customer.account_no, args.category)
    if earlier is not None:
        return DuplicateComplaint(
            open_ticket_no=earlier.no, opened_at=earlier.created_at,
            message=f"本次对话已登记过同类投诉，工单号 {earlier.no}，正在处理中，无需重复提交。")
    contact = args.contact or customer.phone
    label = CATEGORY_CN[args.category.value]
    order = add_work_order(
        session, now.astimezone(policy.zone),
        kind=WorkOrderKind.COMPLAINT, account_no=customer.account_no, status=WorkOrderStatus.OPEN,
        priority=WorkOrderPriority.URGENT if args.urgent or shortened else WorkOrderPriority.HIGH,
        title=f"投诉：{label}" + ("（紧急）" if args.urgent else ""), description=args.description,
        contact=contact, channel=ctx.channel, sla_due_at=contact_due, created_at=now,
        payload={"category": args.category.value, "urgent": args.urgent,
                 "conversation_id": ctx.conversation_id, "contact_due_at": contact_due.isoformat(),
                 "answer_due_at": answer_due.isoformat(), "policy": policy.version,
                 **({"queue": queue, "service_classes": level.names(), "cx_policy": level.policy_version,
                     "contact_hours": hours} if level is not None and (shortened or queue) else {}),
                 **({"reply_channel": level.preferred_channel} if level is not None and level.preferred_channel
                    else {})},
    )
    session.commit()
    commitment = rules.urgent_commitment if args.urgent else rules.commitment
    if shortened:
        commitment = f"受理后{hours}小时内联系您，{rules.answer_working_days}个工作日内答复处理结果。"
    handled_by = f"已安排{queue}专人跟进，" if queue else ""
    answered_there = (level.preferred_channel_message or "") if (
        level is not None and level.preferred_channel and level.preferred_channel != ctx.channel) else ""
    return ComplaintOpened(
        ticket_no=order.no, category=args.category, urgent=args.urgent, created_at=now,
        contact_due_at=contact_due, answer_due_at=answer_due, commitment=commitment,
        queue=queue if level is not None and (shortened or queue) else None,
        service_classes=level.names() if level is not None and (shortened or queue) else [],
        message=f"已受理您的投诉（{label}），工单号 {order.no}。{handled_by}我们将在 {contact_due:%Y-%m-%d %H:%M} 前"
                f"联系您，{answer_due:%Y-%m-%d %H:%M} 前答复处理结果。{answered_there}",
    )
