"""`lookup_bill`: the verified customer's bills — one month, or the latest n — with amount,
kWh, due date, status and what is still owed. Every figure is read from the billing database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from billing_core.money import ZERO
from tools.account_view import STATUS_CN, CustomerView, standing, unissued_bill, visible_bills_paid
from tools.context import ToolContext
from tools.periods import Period
from tools.results import NotFound, ToolResult


class LookupBillInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Period | None = None
    latest: int = Field(default=1, ge=1, le=24, description="不指定月份时，返回最近几期账单")


class BillSummary(BaseModel):
    period: str
    bill_no: str | None
    period_start: date
    period_end: date
    total_kwh: Decimal
    amount: Decimal
    due_date: date | None
    status: Literal["paid", "partially_paid", "unpaid", "overdue"]
    status_cn: str
    paid: Decimal
    outstanding: Decimal
    late_fee_so_far: Decimal


class BillsFound(ToolResult):
    status: Literal["ok"] = "ok"
    account_no: str
    bills: list[BillSummary]
    arrears_total: Decimal  # everything still owed on issued bills (late fees not included)
    late_fees_total: Decimal
    prepaid_balance: Decimal


def _describe(b: BillSummary) -> str:
    text = f"{b.period} 账单：用电 {b.total_kwh} 千瓦时，电费 {b.amount} 元"
    if b.due_date is not None:
        text += f"，缴费截止日 {b.due_date}"
    text += f"，{b.status_cn}"
    if b.outstanding > ZERO and b.status != "unpaid":
        text += f"，尚欠 {b.outstanding} 元"
    if b.late_fee_so_far > ZERO:
        text += f"，截至今日违约金 {b.late_fee_so_far} 元"
    return text + "。"


def lookup_bill(ctx: ToolContext, session: Session, customer: CustomerView,
                args: LookupBillInput) -> ToolResult:
    today = ctx.today()
    # Every issued bill, once: the ones shown are among them, and arrears cover them all.
    every = visible_bills_paid(session, customer)
    shown = ([(b, paid) for b, paid in every if b.period == args.period] if args.period
             else every[:args.latest])
    if not shown:
        if args.period and unissued_bill(session, customer, args.period) is not None:
            return NotFound(message=f"{args.period} 的账单正在核算，尚未发行，发行后会通知您。")
        which = f"{args.period} 的" if args.period else ""
        return NotFound(message=f"没有查到{which}已发行账单。")
    standings = {bill.id: standing(session, customer, bill, today, paid) for bill, paid in every}
    summaries = []
    for bill, _ in shown:
        s = standings[bill.id]
        summaries.append(BillSummary(
            period=bill.period, bill_no=bill.bill_no, period_start=bill.period_start,
            period_end=bill.period_end, total_kwh=bill.total_kwh, amount=bill.amount,
            due_date=bill.due_date, status=s.state, status_cn=STATUS_CN[s.state], paid=s.paid,
            outstanding=s.outstanding, late_fee_so_far=s.late_fee.amount if s.late_fee else ZERO,
        ))
    owed = list(standings.values())
    arrears = sum((s.outstanding for s in owed), ZERO)
    fees = sum((s.late_fee.amount for s in owed if s.late_fee), ZERO)
    message = "".join(_describe(b) for b in summaries)
    if arrears > ZERO:
        message += f"目前共欠费 {arrears} 元" + (f"，另有违约金 {fees} 元" if fees > ZERO else "") + "。"
    return BillsFound(account_no=customer.account_no, bills=summaries, arrears_total=arrears,
                      late_fees_total=fees, prepaid_balance=customer.prepaid_balance, message=message)
