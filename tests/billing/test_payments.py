"""Payment rules: validation, idempotency, duplicates, partial and over-payment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_core.errors import PaymentError
from billing_core.payments import (
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
