"""`payment_status`: is a bill paid, when and through which channel, what is still owed, the
late fee so far (the billing core's rule, `billing_core.operations.dunning.late_fee`, counted to today) and
how to pay. Without a month it answers for the latest issued bill."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from billing_core.db.models import Payment, PaymentStatus
from billing_core.money import ZERO
from billing_core.operations.payments import CHANNEL_NAMES
from tools.account_view import STATUS_CN, CustomerView, standing, unissued_bill, visible_bills_paid
from tools.context import ToolContext
from tools.periods import Period
from tools.results import NotFound, ToolResult
from tools.service_policy import PaymentChannelInfo

# The columns a payment record shows, as plain rows (built once; no ORM objects to track).
_PAYMENT = Payment.__table__.c
_PAYMENTS_OF_BILL = (
    select(_PAYMENT.amount, _PAYMENT.channel, _PAYMENT.paid_at)
    .where(_PAYMENT.bill_id == bindparam("bill_id"), _PAYMENT.status == PaymentStatus.SUCCEEDED)
    .order_by(_PAYMENT.paid_at)
)


class PaymentStatusInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Period | None = None


class PaymentRecord(BaseModel):
    amount: Decimal
    channel: str
    channel_cn: str
    paid_at: datetime


class LateFeeDetail(BaseModel):
    amount: Decimal
    principal: Decimal
    days: int
    days_current_year: int
    days_across_years: int
    daily_rate_current_year: Decimal
    daily_rate_across_years: Decimal
    minimum_applied: bool
    explanation: str


class PaymentStatusFound(ToolResult):
    status: Literal["ok"] = "ok"
    period: str
    bill_no: str | None
    amount: Decimal
    due_date: date | None
    payment_state: Literal["paid", "partially_paid", "unpaid", "overdue"]
    payment_state_cn: str
    paid: Decimal
    outstanding: Decimal
    days_overdue: int
    late_fee: LateFeeDetail | None
    payments: list[PaymentRecord]
    withholding_agreement: bool
    prepaid_balance: Decimal
    how_to_pay: list[PaymentChannelInfo]


def payment_status(ctx: ToolContext, session: Session, customer: CustomerView,
                   args: PaymentStatusInput) -> ToolResult:
    today = ctx.today()
    bills = visible_bills_paid(session, customer, period=args.period, latest=1)
    if not bills:
        if args.period and unissued_bill(session, customer, args.period) is not None:
            return NotFound(message=f"{args.period} 的账单尚未发行，暂时不需要缴费。")
        return NotFound(message=f"没有查到{args.period + ' 的' if args.period else ''}已发行账单。")
    bill, paid = bills[0]
    s = standing(session, customer, bill, today, paid)
    rows = session.connection().execute(_PAYMENTS_OF_BILL, {"bill_id": bill.id})
    payments = [PaymentRecord(amount=p.amount, channel=p.channel.value,
                              channel_cn=CHANNEL_NAMES.get(p.channel.value, p.channel.value),
                              paid_at=p.paid_at) for p in rows]  # type: ignore[attr-defined]
    fee = None
    if s.late_fee is not None:
        f = s.late_fee
        fee = LateFeeDetail(amount=f.amount, principal=f.principal, days=f.days,
                            days_current_year=f.days_current_year, days_across_years=f.days_across_years,
                            daily_rate_current_year=f.rate_current_year,
                            daily_rate_across_years=f.rate_across_years,
                            minimum_applied=f.minimum_applied, explanation=f.explanation())
    zone = ctx.policy.zone
    if s.state == "paid":
        last = payments[-1] if payments else None
        how = f"，{last.paid_at.astimezone(zone):%Y-%m-%d %H:%M} 通过{last.channel_cn}缴纳" if last else ""
        message = f"{bill.period} 账单 {bill.amount} 元已缴清{how}。"
    else:
        message = f"{bill.period} 账单 {bill.amount} 元，{STATUS_CN[s.state]}，尚欠 {s.outstanding} 元"
        if bill.due_date is not None:
            message += f"，缴费截止日 {bill.due_date}"
        if fee is not None:
            message += f"，已逾期 {s.days_overdue} 天，截至今日违约金 {fee.amount} 元（{fee.explanation}）"
        message += "。可以通过" + "、".join(c.name for c in ctx.policy.payment_channels) + "缴费。"
        if customer.withholding_agreement:
            message += "您已签订银行代扣协议，请留意扣款账户余额。"
    return PaymentStatusFound(
        period=bill.period, bill_no=bill.bill_no, amount=bill.amount, due_date=bill.due_date,
        payment_state=s.state, payment_state_cn=STATUS_CN[s.state], paid=s.paid,
        outstanding=s.outstanding, days_overdue=s.days_overdue, late_fee=fee, payments=payments,
        withholding_agreement=customer.withholding_agreement,
        prepaid_balance=customer.prepaid_balance or ZERO,
        how_to_pay=list(ctx.policy.payment_channels), message=message,
    )
