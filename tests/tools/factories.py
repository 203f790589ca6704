"""Builders for tools tests: customers, and bills computed by the billing core from usage (never
typed-in amounts), issued with a due date, and payments."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from billing_core.bill_types import BillRequest, CustomerCategory, Usage
from billing_core.tariffs.compute import compute_bill
from billing_core.db.models import Bill, BillStatus, Customer, Payment, PaymentChannel, bill_from_computed
from billing_core.periods import period_bounds

# Friday 2026-06-26 10:00 in Guangzhou.
NOW = datetime(2026, 6, 26, 2, 0, tzinfo=UTC)


def add_customer(session: Session, account_no: str, *, name: str = "陈志强", phone: str | None = "13800138000",
                 id_last4: str | None = "123X", address: str = "广州市天河区体育西路 1 号",
                 category: CustomerCategory = CustomerCategory.RESIDENTIAL, openid: str | None = None,
                 **attributes: object) -> Customer:
    customer = Customer(account_no=account_no, name=name, phone=phone, id_last4=id_last4, address=address,
                        category=category, wechat_openid=openid, **attributes)
    session.add(customer)
    session.flush()
    return customer


def add_bill(session: Session, customer: Customer, period: str, kwh: str, *, back_charge_kwh: str = "0",
             reactive_kvarh: str | None = None, status: BillStatus = BillStatus.ISSUED,
             due_date: date | None = None) -> Bill:
    """A bill computed by `compute_bill` from `kwh`, stored with its lines and issued."""
    start, end = period_bounds(period)
    computed = compute_bill(BillRequest(
        account_no=customer.account_no, attributes=customer.tariff_attributes(), period_start=start,
        period_end=end,
        usage=Usage(total_kwh=Decimal(kwh),
                    reactive_kvarh=Decimal(reactive_kvarh) if reactive_kvarh is not None else None),
        back_charge_kwh=Decimal(back_charge_kwh),
    ))
    bill = bill_from_computed(customer.id, period, computed)
    bill.status = status
    bill.bill_no = f"GD{period.replace('-', '')}{customer.account_no}"
    bill.due_date = due_date
    session.add(bill)
    session.flush()
    return bill


def pay(session: Session, bill: Bill, amount: Decimal | None = None, *,
        channel: PaymentChannel = PaymentChannel.WECHAT_PAY, paid_at: datetime | None = None) -> Payment:
    amount = bill.amount if amount is None else amount
    payment = Payment(bill_id=bill.id, customer_id=bill.customer_id, amount=amount, channel=channel,
                      paid_at=paid_at or datetime(2026, 5, 10, 4, 0, tzinfo=UTC),
                      idempotency_key=f"pay-{bill.id}-{amount}-{channel.value}")
    session.add(payment)
    bill.status = BillStatus.PAID if amount >= bill.amount else BillStatus.PARTIALLY_PAID
    session.flush()
    return payment
