"""Reading a verified customer's bills: what was issued, what was paid, what is still owed.

Shared by lookup_bill, explain_bill, payment_status and open_dispute, so "outstanding" and
"overdue" mean the same thing in every answer. Every query is scoped to the principal's
account; there is no function here that takes an account number from anywhere else.

The statements are built once, at import, with bound parameters: building a select per call
(coercions, operator overloading) cost more CPU than running it, and a fixed statement hits
SQLAlchemy's compiled cache. The bills come with what was paid on them (a correlated sum), so a
lookup is two queries however many bills it shows. The customer, the bills and their lines
are read-only `Row`s of the columns the tools use (attribute names as in the models, no ORM
identity map or change tracking); a tool that changes a row loads the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, Row, bindparam, func, select
from sqlalchemy.orm import Session

from billing_core.operations.dunning import LateFee, late_fee
from billing_core.db.models import Bill, BillLine, BillStatus, Customer, Payment, PaymentStatus
from billing_core.money import ZERO
from tools.context import Principal

# Bills a customer may see: issued to them. Computed or held bills are still under review.
VISIBLE_STATUSES = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID, BillStatus.PAID)
STATUS_CN = {"paid": "已缴清", "partially_paid": "部分缴费", "unpaid": "未缴费", "overdue": "已逾期"}

# Plain-table statements (no ORM entities), run on the session's connection: the ORM's
# compile-state and loading steps were most of the cost of these small reads.
_C, _B, _P = Customer.__table__.c, Bill.__table__.c, Payment.__table__.c
# What the tools read of a customer (add a column here before using it in a tool).
_CUSTOMER_BY_ACCOUNT = select(
    _C.id, _C.account_no, _C.name, _C.phone, _C.category, _C.household_type, _C.region,
    _C.withholding_agreement, _C.prepaid_balance,
).where(_C.account_no == bindparam("account_no"))
CustomerView = Row[Any]  # a row of _CUSTOMER_BY_ACCOUNT's columns, same names as `Customer`'s
BillView = Row[Any]  # a row of _VISIBLE's bill columns, or a `Bill`: both have the attributes used here


def _paid_total(bill_id: Any) -> Any:
    """Succeeded payments applied to a bill (uncapped; `_capped` caps it), as a scalar subquery."""
    return (select(func.coalesce(func.sum(_P.amount), 0))
            .where(_P.bill_id == bill_id, _P.status == PaymentStatus.SUCCEEDED).scalar_subquery())


_VISIBLE = (
    select(_B.id, _B.period, _B.bill_no, _B.period_start, _B.period_end, _B.total_kwh, _B.amount,
           _B.status, _B.due_date, _paid_total(_B.id).label("paid_total"))
    .where(_B.customer_id == bindparam("customer_id"), _B.status.in_(VISIBLE_STATUSES))
    .order_by(_B.period.desc())
)
_VISIBLE_OF_PERIOD = _VISIBLE.where(_B.period == bindparam("period"))
_VISIBLE_LATEST = _VISIBLE.limit(bindparam("latest", type_=Integer))
# Whole bills of up to three periods, and their lines (explain_bill): two queries for all of them.
_THREE_PERIODS = (bindparam("period_1"), bindparam("period_2"), bindparam("period_3"))
_VISIBLE_IN_PERIODS = select(*Bill.__table__.c, _paid_total(_B.id).label("paid_total")).where(
    _B.customer_id == bindparam("customer_id"), _B.status.in_(VISIBLE_STATUSES), _B.period.in_(_THREE_PERIODS))
_LINES_OF_VISIBLE_IN_PERIODS = (
    select(*BillLine.__table__.c)
    .join_from(BillLine.__table__, Bill.__table__, BillLine.__table__.c.bill_id == _B.id)
    .where(_B.customer_id == bindparam("customer_id"), _B.status.in_(VISIBLE_STATUSES),
           _B.period.in_(_THREE_PERIODS))
    .order_by(BillLine.__table__.c.bill_id, BillLine.__table__.c.position)
)
_UNISSUED = select(_B.id).where(
    _B.customer_id == bindparam("customer_id"), _B.period == bindparam("period"),
    _B.status.in_((BillStatus.COMPUTED, BillStatus.HELD)))
_PAID_OF_BILL = select(_paid_total(bindparam("bill_id")))


def customer_of(session: Session, principal: Principal) -> CustomerView:
    """The principal's customer (a read-only row; to change it, load the `Customer` model)."""
    customer = session.connection().execute(_CUSTOMER_BY_ACCOUNT, {"account_no": principal.account_no}).first()
    if customer is None:  # the account was closed after verification
        raise LookupError(f"account {principal.account_no} no longer exists")
    return customer


def _capped(bill: BillView, total: object) -> Decimal:
    """What counts as paid on the bill: succeeded payments, capped at its amount (an excess is a refund)."""
    return min(Decimal(total or ZERO), bill.amount)  # type: ignore[arg-type]


def visible_bills_paid(session: Session, customer: CustomerView, period: str | None = None,
                       latest: int | None = None) -> list[tuple[BillView, Decimal]]:
    """The customer's issued bills, newest first, each with the amount paid on it (one query)."""
    connection = session.connection()
    if period is not None:
        rows = connection.execute(_VISIBLE_OF_PERIOD, {"customer_id": customer.id, "period": period}).all()
        rows = rows[:latest]  # at most one bill per period anyway
    elif latest is not None:
        rows = connection.execute(_VISIBLE_LATEST, {"customer_id": customer.id, "latest": latest}).all()
    else:
        rows = connection.execute(_VISIBLE, {"customer_id": customer.id}).all()
    return [(bill, _capped(bill, bill.paid_total)) for bill in rows]


@dataclass(frozen=True)
class BillWithLines:
    """An issued bill's columns (as attributes, named like `Bill`'s) with its lines in bill order."""

    row: Row[Any]
    paid: Decimal
    lines: list[Row[Any]] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def visible_bills_in_periods(session: Session, customer: CustomerView,
                             periods: tuple[str, str, str]) -> dict[str, BillWithLines]:
    """The customer's issued bills of these three periods, with lines and the amount paid, by period."""
    connection = session.connection()
    params = {"customer_id": customer.id, "period_1": periods[0], "period_2": periods[1],
              "period_3": periods[2]}
    bills = {row.id: BillWithLines(row, _capped(row, row.paid_total))
             for row in connection.execute(_VISIBLE_IN_PERIODS, params)}
    for line in connection.execute(_LINES_OF_VISIBLE_IN_PERIODS, params):
        bills[line.bill_id].lines.append(line)
    return {bill.period: bill for bill in bills.values()}


def visible_bills(session: Session, customer: CustomerView, period: str | None = None,
                  latest: int | None = None) -> list[BillView]:
    """The customer's issued bills, newest first; one period, or the latest n."""
    return [bill for bill, _ in visible_bills_paid(session, customer, period, latest)]


def unissued_bill(session: Session, customer: CustomerView, period: str) -> int | None:
    """The id of a bill of `period` that exists but is not issued yet (computed, held for review)."""
    return session.connection().scalar(_UNISSUED, {"customer_id": customer.id, "period": period})


def paid_amount(session: Session, bill: BillView) -> Decimal:
    """Succeeded payments applied to the bill, capped at its amount (an excess is a refund)."""
    return _capped(bill, session.connection().scalar(_PAID_OF_BILL, {"bill_id": bill.id}))


@dataclass(frozen=True)
class BillStanding:
    """Where a bill stands today."""

    paid: Decimal
    outstanding: Decimal
    state: str  # paid | partially_paid | unpaid | overdue
    days_overdue: int
    late_fee: LateFee | None


def standing(session: Session, customer: CustomerView, bill: BillView, today: date,
             paid: Decimal | None = None) -> BillStanding:
    """`paid`: the amount paid on the bill if already read (`visible_bills_paid`), else queried."""
    if bill.status == BillStatus.PAID:
        paid = bill.amount
    elif paid is None:
        paid = paid_amount(session, bill)
    outstanding = max(bill.amount - paid, ZERO)
    if outstanding == ZERO:
        return BillStanding(paid, ZERO, "paid", 0, None)
    overdue_days = (today - bill.due_date).days if bill.due_date is not None else 0
    if overdue_days > 0:
        fee = late_fee(outstanding, bill.due_date, today, customer.category.value)  # type: ignore[arg-type]
        return BillStanding(paid, outstanding, "overdue", overdue_days, fee)
    return BillStanding(paid, outstanding, "partially_paid" if paid > ZERO else "unpaid", 0, None)
