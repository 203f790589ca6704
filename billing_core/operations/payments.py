"""Payment rules (电费缴费, T/CI 1281 §7.6, 收费准确性 §8.2): what a posted payment does to a bill.

Every payment carries an idempotency key, so a channel that retries (a WeChat Pay callback sent
twice) records one payment. A second *real* payment of a bill already paid is money the customer
must get back: it is recorded and becomes a refund work order. Refusals (unknown bill, amount ≤ 0,
a currency other than CNY, an unknown channel) raise `PaymentError` naming the field.
This module decides; `payments_store` applies the decision to the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from billing_core.errors import PaymentError
from billing_core.db.models import PaymentChannel
from billing_core.money import ZERO, parse_decimal


PAYMENT_CHANNELS = frozenset(channel.value for channel in PaymentChannel)
# 电子化结算: every channel but cash at the counter.
ELECTRONIC_CHANNELS = frozenset(PAYMENT_CHANNELS - {PaymentChannel.COUNTER.value})
CHANNEL_NAMES = {
    "wechat_pay": "微信支付",
    "alipay": "支付宝",
    "bank_withholding": "银行代扣",
    "counter": "营业厅柜台",
    "prepaid": "预存电费",
    "bank_transfer": "对公转账",
}
PAYABLE_STATUSES = frozenset({"issued", "partially_paid", "paid"})


@dataclass(frozen=True)
class PaymentRequest:
    """A payment as a channel reports it, validated (use `PaymentRequest.parse` for raw input)."""

    bill_no: str
    amount: Decimal
    channel: str
    idempotency_key: str
    paid_at: datetime
    currency: str = "CNY"
    payer_name: str | None = None

    @classmethod
    def parse(
        cls,
        bill_no: object,
        amount: object,
        channel: object,
        idempotency_key: object,
        paid_at: datetime,
        currency: object = "CNY",
        payer_name: str | None = None,
    ) -> PaymentRequest:
        """Validate raw values; each refusal names its field."""
        if not isinstance(bill_no, str) or not bill_no.strip():
            raise PaymentError("账单编号不能为空", field="bill_no")
        try:
            value = parse_decimal(amount, "amount")
        except ValueError as exc:
            raise PaymentError(str(exc).split(": ", 1)[-1], field="amount") from None
        if value <= ZERO:
            raise PaymentError(f"缴费金额必须大于 0，实际 {value}", field="amount")
        if value != value.quantize(Decimal("0.01")):
            raise PaymentError(f"缴费金额最多两位小数（到分），实际 {value}", field="amount")
        if currency != "CNY":
            raise PaymentError(f"仅接受人民币 CNY，实际 {currency!r}", field="currency")
        if channel not in PAYMENT_CHANNELS:
            raise PaymentError(
                f"未知缴费渠道 {channel!r}，可用：{', '.join(sorted(PAYMENT_CHANNELS))}", field="channel"
            )
        if not isinstance(idempotency_key, str) or not idempotency_key.strip():
            raise PaymentError("幂等键不能为空（同一笔缴费重复提交时用它识别）", field="idempotency_key")
        return cls(
            bill_no=bill_no.strip(),
            amount=value.quantize(Decimal("0.01")),
            channel=str(channel),
            idempotency_key=idempotency_key.strip(),
            paid_at=paid_at,
            currency="CNY",
            payer_name=payer_name,
        )


@dataclass(frozen=True)
class BillBalance:
    """The state of the bill a payment is for."""

    bill_no: str
    status: str
    total: Decimal
    paid: Decimal  # sum of payments applied so far (duplicates excluded)

    @property
    def outstanding(self) -> Decimal:
        return max(self.total - self.paid, ZERO)


@dataclass(frozen=True)
class PriorPayment:
    """A payment already recorded under the same idempotency key."""

    bill_no: str
    amount: Decimal
    channel: str


class PaymentOutcome(StrEnum):
    POSTED = "posted"  # applied to the bill
    ALREADY_RECORDED = "already_recorded"  # same idempotency key: nothing new
    DUPLICATE = "duplicate"  # bill was already paid: recorded, refund work order


@dataclass(frozen=True)
class PaymentDecision:
    outcome: PaymentOutcome
    applied: Decimal  # amount that reduces the bill
    refund: Decimal  # amount owed back to the customer (duplicate or overpayment)
    new_status: str  # the bill's status after the payment
    message: str  # Chinese, for the cashier / agent


def decide_payment(
    request: PaymentRequest, bill: BillBalance | None, prior: PriorPayment | None
) -> PaymentDecision:
    """What a payment does; raises `PaymentError` when it must be refused."""
    if prior is not None:
        if (prior.bill_no, prior.amount, prior.channel) != (request.bill_no, request.amount, request.channel):
            raise PaymentError(
                f"幂等键 {request.idempotency_key!r} 已用于另一笔缴费（账单 {prior.bill_no}，"
                f"{prior.amount} 元，{prior.channel}），不能复用",
                field="idempotency_key",
            )
        status = bill.status if bill is not None else "paid"
        return PaymentDecision(
            PaymentOutcome.ALREADY_RECORDED, ZERO, ZERO, status,
            f"该笔缴费（幂等键 {request.idempotency_key}）已入账，本次不重复记账。",
        )
    if bill is None:
        raise PaymentError(f"账单 {request.bill_no!r} 不存在", field="bill_no")
    if bill.status not in PAYABLE_STATUSES:
        raise PaymentError(
            f"账单 {bill.bill_no} 状态为 {bill.status}，尚未发行或已作废，不能缴费", field="bill_no"
        )
    outstanding = bill.outstanding
    if outstanding == ZERO:
        return PaymentDecision(
            PaymentOutcome.DUPLICATE, ZERO, request.amount, bill.status,
            f"账单 {bill.bill_no} 已结清，本次 {request.amount} 元为重复缴费，已生成退费工单。",
        )
    applied = min(request.amount, outstanding)
    refund = request.amount - applied
    new_status = "paid" if applied == outstanding else "partially_paid"
    message = f"已入账 {applied} 元，账单 {bill.bill_no} " + ("已结清。" if new_status == "paid" else
                                                          f"尚欠 {outstanding - applied} 元。")
    if refund > ZERO:
        message += f"多缴 {refund} 元，已生成退费工单。"
    return PaymentDecision(PaymentOutcome.POSTED, applied, refund, new_status, message)
