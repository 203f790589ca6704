"""Payment rules: validation, idempotency, duplicates, partial and over-payment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_core.errors import PaymentError
from billing_core.operations.payments import (
    BillBalance,
    PaymentOutcome,
    PaymentRequest,
    PriorPayment,
    decide_payment,
)

NOW = datetime(2026, 8, 3, 9, 30, tzinfo=UTC)


def request(amount: object = "242.55", **kw: object) -> PaymentRequest:
    values = {"bill_no": "GD202607000001", "amount": amount, "channel": "wechat_pay",
              "idempotency_key": "wx-0001", "paid_at": NOW, **kw}
    return PaymentRequest.parse(**values)  # type: ignore[arg-type]


def issued(paid: str = "0", status: str = "issued") -> BillBalance:
    return BillBalance("GD202607000001", status, Decimal("242.55"), Decimal(paid))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-10"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"channel": "paypal"}, "channel"),
        ({"bill_no": " "}, "bill_no"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ],
)
def test_bad_payments_are_refused_naming_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(PaymentError) as err:
        request(**kw)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def test_full_payment_settles_the_bill() -> None:
    decision = decide_payment(request(), issued(), None)
    assert decision.outcome is PaymentOutcome.POSTED
    assert (decision.applied, decision.refund, decision.new_status) == (Decimal("242.55"), 0, "paid")


def test_partial_payment_leaves_the_rest_owed() -> None:
    decision = decide_payment(request("100.00"), issued(), None)
    assert (decision.applied, decision.new_status) == (Decimal("100.00"), "partially_paid")
    assert "142.55" in decision.message


def test_overpayment_pays_the_bill_and_refunds_the_excess() -> None:
    decision = decide_payment(request("300.00"), issued(paid="100.00", status="partially_paid"), None)
    assert (decision.applied, decision.refund, decision.new_status) == (
        Decimal("142.55"), Decimal("157.45"), "paid")


def test_same_key_twice_is_one_payment() -> None:
    prior = PriorPayment("GD202607000001", Decimal("242.55"), "wechat_pay")
    decision = decide_payment(request(), issued(paid="242.55", status="paid"), prior)
    assert decision.outcome is PaymentOutcome.ALREADY_RECORDED and decision.applied == 0


def test_a_key_reused_for_another_payment_is_refused() -> None:
    prior = PriorPayment("GD202607000001", Decimal("100.00"), "wechat_pay")
    with pytest.raises(PaymentError) as err:
        decide_payment(request(), issued(), prior)
    assert err.value.field == "idempotency_key"


def test_a_second_real_payment_of_a_paid_bill_is_a_duplicate_to_refund() -> None:
    decision = decide_payment(request(idempotency_key="ali-9"), issued(paid="242.55", status="paid"), None)
    assert decision.outcome is PaymentOutcome.DUPLICATE
    assert (decision.applied, decision.refund) == (0, Decimal("242.55"))
    assert "退费工单" in decision.message


@pytest.mark.parametrize("status", ["computed", "held", "cancelled"])
def test_bills_not_issued_cannot_be_paid(status: str) -> None:
    with pytest.raises(PaymentError) as err:
        decide_payment(request(), issued(status=status), None)
    assert err.value.field == "bill_no"


def test_unknown_bill_is_refused() -> None:
    with pytest.raises(PaymentError, match="不存在"):
        decide_payment(request(), None, None)


# --- posting to the database (SQLite and PostgreSQL) ---------------------------------------------

from datetime import date  # noqa: E402

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from billing_core.db.models import Bill, BillStatus, Customer, Payment, WorkOrder, WorkOrderKind  # noqa: E402
from billing_core.operations.payments_store import post_payment  # noqa: E402
from tests.billing.ops_factories import add_bill, add_customer  # noqa: E402

BILL_NO = "GD202607440100000001"


def issued_bill(session: Session, prepaid: str = "0") -> Bill:
    customer = add_customer(session, 1, prepaid=prepaid)
    bill = add_bill(session, customer, "2026-07", "400", "242.55", status=BillStatus.ISSUED, bill_no=BILL_NO,
                    due_date=date(2026, 8, 17))
    session.commit()
    return bill


def pay(session: Session, amount: str = "242.55", key: str = "wx-0001", channel: str = "wechat_pay"):
    result = post_payment(session, request(amount, idempotency_key=key, channel=channel, bill_no=BILL_NO))
    session.commit()
    return result


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_posting_settles_the_bill(session: Session) -> None:
    bill = issued_bill(session)
    result = pay(session)
    session.refresh(bill)
    assert result.outcome is PaymentOutcome.POSTED and bill.status is BillStatus.PAID
    stored = session.scalar(select(Payment))
    assert (stored.amount, stored.currency, stored.channel.value) == (Decimal("242.55"), "CNY", "wechat_pay")


def test_the_same_payment_posted_twice_is_one_payment(session: Session) -> None:
    issued_bill(session)
    first, second = pay(session), pay(session)
    assert second.outcome is PaymentOutcome.ALREADY_RECORDED and second.payment_id == first.payment_id
    assert count(session, Payment) == 1 and count(session, WorkOrder) == 0


def test_a_second_real_payment_becomes_a_refund_work_order(session: Session) -> None:
    bill = issued_bill(session)
    pay(session)
    duplicate = pay(session, key="ali-0002", channel="alipay")
    session.refresh(bill)
    assert duplicate.outcome is PaymentOutcome.DUPLICATE and bill.status is BillStatus.PAID
    assert count(session, Payment) == 2
    order = session.scalar(select(WorkOrder).where(WorkOrder.no == duplicate.refund_work_order))
    assert order.kind is WorkOrderKind.REFUND and order.payload["refund"] == "242.55"
    assert order.bill_id == bill.id and order.payload["reason"] == "duplicate"


def test_partial_then_rest(session: Session) -> None:
    bill = issued_bill(session)
    pay(session, "100.00", key="c-1", channel="counter")
    session.refresh(bill)
    assert bill.status is BillStatus.PARTIALLY_PAID
    pay(session, "142.55", key="c-2", channel="counter")
    session.refresh(bill)
    assert bill.status is BillStatus.PAID and count(session, WorkOrder) == 0


def test_prepaid_balance_is_drawn_down_and_cannot_go_negative(session: Session) -> None:
    bill = issued_bill(session, prepaid="300.00")
    pay(session, key="pre-1", channel="prepaid")
    customer = session.get(Customer, bill.customer_id)
    session.refresh(customer)
    assert customer.prepaid_balance == Decimal("57.45")
    bill.status = BillStatus.ISSUED  # pretend a second bill: the balance no longer covers it
    session.commit()
    with pytest.raises(PaymentError) as err:
        post_payment(session, request("242.55", idempotency_key="pre-2", channel="prepaid", bill_no=BILL_NO))
    session.rollback()
    assert err.value.field == "amount" and count(session, Payment) == 1


@pytest.mark.parametrize("bad", ["unknown_bill", "zero", "usd"])
def test_refused_payments_write_nothing(session: Session, bad: str) -> None:
    issued_bill(session)
    with pytest.raises(PaymentError):
        if bad == "unknown_bill":
            post_payment(session, request(bill_no="GD000000000000000000"))
        elif bad == "zero":
            post_payment(session, request("0.00", bill_no=BILL_NO))
        else:
            post_payment(session, request(currency="USD", bill_no=BILL_NO))
    session.rollback()
    assert count(session, Payment) == 0


@pytest.mark.postgres
def test_concurrent_posts_of_one_payment_and_of_two_payments(postgres_server) -> None:
    """Two channels racing on one bill, on a real server: one payment per key, one settles the bill."""
    import threading

    from billing_core.db.engine import make_engine
    from billing_core.db.migrate import upgrade

    url = postgres_server.create_database()
    try:
        upgrade(url)
        engine = make_engine(url, pool_size=4)
        with Session(engine) as setup:
            issued_bill(setup)
        outcomes: list[PaymentOutcome] = []
        barrier = threading.Barrier(4)

        def post(key: str) -> None:
            with Session(engine) as own:
                barrier.wait()
                outcomes.append(post_payment(own, request(idempotency_key=key, bill_no=BILL_NO)).outcome)
                own.commit()

        threads = [threading.Thread(target=post, args=(key,)) for key in ("same", "same", "other", "other")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        with Session(engine) as check:
            assert count(check, Payment) == 2  # one per key
            assert count(check, WorkOrder) == 1  # the second key paid a paid bill: one refund
        assert sorted(outcomes) == sorted([PaymentOutcome.POSTED, PaymentOutcome.DUPLICATE,
                                           PaymentOutcome.ALREADY_RECORDED, PaymentOutcome.ALREADY_RECORDED])
        engine.dispose()
    finally:
        postgres_server.drop_database(url.rsplit("/", 1)[1])
