"""Posting a payment to the database: the rules of `payments`, applied in one transaction.

The bill row is locked while its balance is read (PostgreSQL `FOR UPDATE`; SQLite serialises
writers anyway), so two channels paying the same bill at the same moment cannot both see it
unpaid. A duplicate or an overpayment is recorded as received and opens a refund work order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_core.errors import PaymentError
from billing_core.db.models import Bill, BillStatus, Customer, Payment, PaymentStatus, WorkOrderKind
from billing_core.money import ZERO
from billing_core.operations.payments import (
    CHANNEL_NAMES,
    BillBalance,
    PaymentDecision,
    PaymentOutcome,
    PaymentRequest,
    PriorPayment,
    decide_payment,
)
from billing_core.operations.work_orders import open_work_order


@dataclass(frozen=True)
class PaymentResult:
    outcome: PaymentOutcome
    payment_id: int | None
    bill_no: str
    applied: Decimal
    refund: Decimal
    bill_status: str
    message: str
    refund_work_order: str | None = None


def paid_so_far(session: Session, bill_id: int) -> Decimal:
    """Money received for a bill (succeeded payments, duplicates included: they are owed back)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.bill_id == bill_id, Payment.status == PaymentStatus.SUCCEEDED
        )
    )
    return Decimal(total or 0)


def _prior(session: Session, key: str) -> PriorPayment | None:
    row = session.execute(
        select(Bill.bill_no, Payment.amount, Payment.channel)
        .join(Bill, Bill.id == Payment.bill_id, isouter=True)
        .where(Payment.idempotency_key == key)
    ).first()
    if row is None:
        return None
    return PriorPayment(row[0] or "", row[1], str(row[2]))


def post_payment(session: Session, request: PaymentRequest) -> PaymentResult:
    """Record a payment (the caller commits). Raises `PaymentError` for a refused payment."""
    # Lock the bill first, then look for the key: a concurrent post of the same payment waits for
    # the lock and then sees the first one's row (the unique key is the last line of defence).
    bill = session.scalar(select(Bill).where(Bill.bill_no == request.bill_no).with_for_update())
    prior = _prior(session, request.idempotency_key)
    balance = None
    if bill is not None:
        balance = BillBalance(bill.bill_no or "", str(bill.status), bill.amount,
                              ZERO if prior else paid_so_far(session, bill.id))
    decision = decide_payment(request, balance, prior)
    if decision.outcome is PaymentOutcome.ALREADY_RECORDED or bill is None:
        existing = session.scalar(select(Payment.id).where(Payment.idempotency_key == request.idempotency_key))
        return PaymentResult(decision.outcome, existing, request.bill_no, ZERO, ZERO, decision.new_status,
                             decision.message)

    customer = session.get(Customer, bill.customer_id, with_for_update=True)
    assert customer is not None
    if request.channel == "prepaid":
        if customer.prepaid_balance < request.amount:
            raise PaymentError(
                f"预存余额 {customer.prepaid_balance} 元不足以抵扣 {request.amount} 元", field="amount"
            )
        customer.prepaid_balance -= request.amount

    payment = Payment(
        bill_id=bill.id,
        customer_id=bill.customer_id,
        amount=request.amount,
        currency=request.currency,
        channel=request.channel,
        paid_at=request.paid_at,
        idempotency_key=request.idempotency_key,
        external_ref=request.idempotency_key[:64],
        status=PaymentStatus.SUCCEEDED,
    )
    try:
        with session.begin_nested():
            session.add(payment)
            session.flush()
    except IntegrityError:
        # Another process posted the same key between our check and our insert: one payment.
        existing = session.scalar(select(Payment.id).where(Payment.idempotency_key == request.idempotency_key))
        if existing is None:
            raise
        return PaymentResult(PaymentOutcome.ALREADY_RECORDED, existing, request.bill_no, ZERO, ZERO,
                             str(bill.status), f"该笔缴费（幂等键 {request.idempotency_key}）已入账，本次不重复记账。")

    if decision.outcome is PaymentOutcome.POSTED:
        bill.status = BillStatus(decision.new_status)
    work_order_no = _refund_order(session, request, decision, customer.account_no, bill, payment.id)
    session.flush()
    return PaymentResult(decision.outcome, payment.id, request.bill_no, decision.applied, decision.refund,
                         decision.new_status, decision.message, work_order_no)


def _refund_order(session: Session, request: PaymentRequest, decision: PaymentDecision, account_no: str,
                  bill: Bill, payment_id: int) -> str | None:
    if decision.refund <= ZERO:
        return None
    kind = "重复缴费" if decision.outcome is PaymentOutcome.DUPLICATE else "多缴电费"
    order = open_work_order(
        session,
        WorkOrderKind.REFUND,
        f"{kind}退费：账单 {bill.bill_no} 退 {decision.refund} 元",
        f"客户通过{CHANNEL_NAMES.get(request.channel, request.channel)}缴费 {request.amount} 元"
        f"（幂等键 {request.idempotency_key}），{decision.message}请原路退回 {decision.refund} 元。",
        account_no=account_no,
        bill_id=bill.id,
        period=bill.period,
        payload={"payment_id": payment_id, "refund": str(decision.refund), "channel": request.channel,
                 "reason": "duplicate" if decision.outcome is PaymentOutcome.DUPLICATE else "overpayment"},
    )
    return order.no
