"""Reading a verified customer's bills: what was issued, what was paid, what is still owed.

Shared by lookup_bill, explain_bill, payment_status and open_dispute, so "outstanding" and
"overdue" mean the same thing in every answer. Every query is scoped to the principal's
account; there is no function here that takes an account number from anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_core.dunning import LateFee, late_fee
from billing_core.models import Bill, BillStatus, Customer, Payment, PaymentStatus
from billing_core.money import ZERO
from tools.context import Principal

# Bills a customer may see: issued to them. Computed or held bills are still under review.
VISIBLE_STATUSES = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.PAID)
STATUS_CN = {"paid": "已缴清", "partially_paid": "部分缴费", "unpaid": "未缴费", "overdue": "已逾期"}


def customer_of(session: Session, principal: Principal) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.account_no == principal.account_no))
    if customer is None:  # the account was closed after verification
        raise LookupError(f"account {principal.account_no} no longer exists")
    return customer


def visible_bills(session: Session, customer: Customer, period: str | None = None,
                  latest: int | None = None) -> list[Bill]:
    """The customer's issued bills, newest first; one period, or the latest n."""
    query = select(Bill).where(Bill.customer_id == customer.id, Bill.status.in_(VISIBLE_STATUSES))
    if period is not None:
        query = query.where(Bill.period == period)
    query = query.order_by(Bill.period.desc())
    if latest is not None:
        query = query.limit(latest)
    return list(session.scalars(query))


def unissued_bill(session: Session, customer: Customer, period: str) -> Bill | None:
    """A bill of `period` that exists but is not issued yet (computed, held for review)."""
    return session.scalar(select(Bill).where(
        Bill.customer_id == customer.id, Bill.period == period,
        Bill.status.in_((BillStatus.COMPUTED, BillStatus.HELD))))


def paid_amount(session: Session, bill: Bill) -> Decimal:
    """Succeeded payments applied to the bill, capped at its amount (an excess is a refund)."""
    total = session.scalar(select(func.coalesce(func.sum(Payment.amount), 0)).where(
        Payment.bill_id == bill.id, Payment.status == PaymentStatus.SUCCEEDED)) or ZERO
    return min(Decimal(total), bill.amount)


@dataclass(frozen=True)
class BillStanding:
    """Where a bill stands today."""

    paid: Decimal
    outstanding: Decimal
    state: str  # paid | partially_paid | unpaid | overdue
    days_overdue: int
    late_fee: LateFee | None


def standing(session: Session, customer: Customer, bill: Bill, today: date) -> BillStanding:
    paid = bill.amount if bill.status == BillStatus.PAID else paid_amount(session, bill)
    outstanding = max(bill.amount - paid, ZERO)
    if outstanding == ZERO:
        return BillStanding(paid, ZERO, "paid", 0, None)
    overdue_days = (today - bill.due_date).days if bill.due_date is not None else 0
    if overdue_days > 0:
        fee = late_fee(outstanding, bill.due_date, today, customer.category.value)  # type: ignore[arg-type]
        return BillStanding(paid, outstanding, "overdue", overdue_days, fee)
    return BillStanding(paid, outstanding, "partially_paid" if paid > ZERO else "unpaid", 0, None)
