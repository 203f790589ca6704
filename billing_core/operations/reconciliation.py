"""Bank-statement reconciliation (电费对账, T/CI 1281 §7.8): parse a statement, match it to payments.

A statement is a CSV whose header must be exactly `STATEMENT_HEADER`; anything else rejects the
whole file. A line with a bad date or amount, or for an unknown account, is set aside with its
line number and reason. Good lines are matched to recorded payments; each exception (duplicate
deduction, money not received, amount mismatch, ...) becomes a work order. The database side
(`reconciliation_store`) writes all of it in one transaction, so a file is never half-imported.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from billing_core.errors import BillingError
from billing_core.operations.payments import PAYMENT_CHANNELS

STATEMENT_HEADER = (
    "bank_txn_id", "value_date", "account_no", "bill_no", "amount", "currency", "channel", "payer_name",
)
_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")


class StatementFormatError(BillingError):
    """The statement file as a whole is unusable (wrong header, not text): nothing is imported."""


@dataclass(frozen=True)
class StatementLine:
    line_no: int  # 1-based line number in the file (the header is line 1)
    bank_txn_id: str
    value_date: date
    account_no: str
    bill_no: str
    amount: Decimal
    currency: str
    channel: str
    payer_name: str


@dataclass(frozen=True)
class SetAsideLine:
    """A line not imported as a transaction, kept with why, so nothing is silently lost."""

    line_no: int
    raw: str
    reason: str


@dataclass(frozen=True)
class ParsedStatement:
    sha256: str
    lines: list[StatementLine]
    set_aside: list[SetAsideLine]

    @property
    def total_lines(self) -> int:
        return len(self.lines) + len(self.set_aside)


def decode_statement(data: bytes) -> str:
    """Banks send UTF-8 (with or without BOM) or GB18030; anything else is refused."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise StatementFormatError("file is neither UTF-8 nor GB18030 text", field="file")


def parse_statement(data: bytes, known_accounts: Container[str]) -> ParsedStatement:
    """Check the header, then each line; returns good lines and set-aside lines with reasons."""
    text = decode_statement(data)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise StatementFormatError("file is empty; expected the header line", field="header")
    header = tuple(cell.strip() for cell in rows[0])
    if header != STATEMENT_HEADER:
        raise StatementFormatError(
            f"header must be exactly {','.join(STATEMENT_HEADER)}; got {','.join(rows[0])}", field="header"
        )
    good: list[StatementLine] = []
    aside: list[SetAsideLine] = []
    seen_txn: dict[str, int] = {}
    for index, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line (often the last one)
        raw = ",".join(row)
        try:
            line = _parse_row(index, row, known_accounts)
        except ValueError as exc:
            aside.append(SetAsideLine(index, raw, str(exc)))
            continue
        if line.bank_txn_id in seen_txn:
            aside.append(
                SetAsideLine(index, raw, f"bank_txn_id: 与第 {seen_txn[line.bank_txn_id]} 行流水号重复")
            )
            continue
        seen_txn[line.bank_txn_id] = index
        good.append(line)
    return ParsedStatement(hashlib.sha256(data).hexdigest(), good, aside)


def _parse_row(line_no: int, row: list[str], known_accounts: Container[str]) -> StatementLine:
    if len(row) != len(STATEMENT_HEADER):
        raise ValueError(f"列数应为 {len(STATEMENT_HEADER)}，实际 {len(row)}")
    values = dict(zip(STATEMENT_HEADER, (cell.strip() for cell in row), strict=True))
    if not values["bank_txn_id"]:
        raise ValueError("bank_txn_id: 银行流水号为空")
    try:
        value_date = date.fromisoformat(values["value_date"])
        if len(values["value_date"]) != 10:
            raise ValueError
    except ValueError:
        raise ValueError(f"value_date: {values['value_date']!r} 不是 YYYY-MM-DD 日期") from None
    if values["account_no"] not in known_accounts:
        raise ValueError(f"account_no: 户号 {values['account_no']!r} 不存在")
    if not values["bill_no"]:
        raise ValueError("bill_no: 账单编号为空")
    if not _AMOUNT.match(values["amount"]):
        raise ValueError(f"amount: {values['amount']!r} 不是最多两位小数的正数金额")
    try:
        amount = Decimal(values["amount"])
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise ValueError(f"amount: {values['amount']!r} 不是数字") from None
    if amount <= 0:
        raise ValueError(f"amount: 金额必须大于 0，实际 {values['amount']}")
    if values["currency"] != "CNY":
        raise ValueError(f"currency: 币种须为 CNY，实际 {values['currency']!r}")
    if values["channel"] not in PAYMENT_CHANNELS:
        raise ValueError(f"channel: 未知缴费渠道 {values['channel']!r}")
    return StatementLine(
        line_no=line_no,
        bank_txn_id=values["bank_txn_id"],
        value_date=value_date,
        account_no=values["account_no"],
        bill_no=values["bill_no"],
        amount=amount,
        currency=values["currency"],
        channel=values["channel"],
        payer_name=values["payer_name"],
    )


# --- matching ---------------------------------------------------------------------------------


class MatchStatus(StrEnum):
    MATCHED = "matched"  # 自动对账成功
    AMOUNT_MISMATCH = "amount_mismatch"  # 扣费记录与缴费不符
    DUPLICATE_DEDUCTION = "duplicate_deduction"  # 重复扣费
    UNRECORDED_RECEIPT = "unrecorded_receipt"  # 银行已到账，系统无缴费记录
    UNKNOWN_BILL = "unknown_bill"  # 账单编号不存在或与户号不符
    MONEY_NOT_RECEIVED = "money_not_received"  # 系统有缴费记录，资金未到账


EXCEPTION_TEXT = {
    MatchStatus.AMOUNT_MISMATCH: "银行扣款金额与系统缴费记录不符",
    MatchStatus.DUPLICATE_DEDUCTION: "同一账单银行重复扣费",
    MatchStatus.UNRECORDED_RECEIPT: "银行已到账但系统无对应缴费记录",
    MatchStatus.UNKNOWN_BILL: "银行流水的账单编号不存在或与户号不符",
    MatchStatus.MONEY_NOT_RECEIVED: "系统已记缴费但对账单中无到账记录",
}


@dataclass(frozen=True)
class KnownPayment:
    """A payment recorded in the billing database, as the matcher needs it."""

    payment_id: int
    bill_no: str
    account_no: str
    amount: Decimal
    channel: str
    paid_on: date
    reference: str | None = None  # the channel's transaction id / idempotency key


@dataclass(frozen=True)
class MatchResult:
    status: MatchStatus
    line: StatementLine | None  # None for money_not_received (a payment without a bank line)
    payment: KnownPayment | None
    reason: str = ""

    @property
    def is_exception(self) -> bool:
        return self.status is not MatchStatus.MATCHED


@dataclass
class MatchOutcome:
    results: list[MatchResult] = field(default_factory=list)

    @property
    def matched(self) -> list[MatchResult]:
        return [r for r in self.results if not r.is_exception]

    @property
    def exceptions(self) -> list[MatchResult]:
        return [r for r in self.results if r.is_exception]


def match_statement(
    lines: Iterable[StatementLine],
    open_payments: Iterable[KnownPayment],
    bill_accounts: dict[str, str],
    settled_bill_nos: Container[str] = (),
    settlement_lag_days: int = 1,
) -> MatchOutcome:
    """Match bank lines to payments not yet reconciled.

    `bill_accounts` maps every known bill number to its account; `settled_bill_nos` are bills
    whose payment an earlier statement already matched (a new deduction for them is a duplicate).
    A bank line matches the payment carrying its transaction id, else an unreconciled payment of
    the same bill and channel (same amount first; another amount is a mismatch). A deduction for
    a bill already paid (matched, settled earlier, or paid through another channel) is a duplicate. Payments of the statement's channels dated inside its
    range (less the settlement lag) that no line matched are "money not received".
    """
    lines = sorted(lines, key=lambda item: item.line_no)
    pool = list(open_payments)
    by_reference = {p.reference: p for p in pool if p.reference}
    by_bill: dict[str, list[KnownPayment]] = {}
    for known in pool:
        by_bill.setdefault(known.bill_no, []).append(known)
    used: set[int] = set()
    matched_bills: set[str] = set()
    outcome = MatchOutcome()

    for line in lines:
        if bill_accounts.get(line.bill_no) != line.account_no:
            outcome.results.append(MatchResult(MatchStatus.UNKNOWN_BILL, line, None,
                                               EXCEPTION_TEXT[MatchStatus.UNKNOWN_BILL]))
            continue
        payment = by_reference.get(line.bank_txn_id)
        if payment is not None and payment.payment_id in used:
            payment = None
        if payment is None:
            same_channel = [
                p for p in by_bill.get(line.bill_no, ())
                if p.payment_id not in used and p.channel == line.channel
            ]
            exact = [p for p in same_channel if p.amount == line.amount]
            if exact:
                payment = exact[0]
            elif same_channel:
                payment = same_channel[0]
        if payment is not None:
            used.add(payment.payment_id)
            if payment.amount == line.amount:
                matched_bills.add(line.bill_no)
                outcome.results.append(MatchResult(MatchStatus.MATCHED, line, payment))
            else:
                outcome.results.append(
                    MatchResult(
                        MatchStatus.AMOUNT_MISMATCH, line, payment,
                        f"{EXCEPTION_TEXT[MatchStatus.AMOUNT_MISMATCH]}：银行 {line.amount} 元，系统 {payment.amount} 元",
                    )
                )
            continue
        paid_elsewhere = any(p.channel != line.channel for p in by_bill.get(line.bill_no, ()))
        if line.bill_no in matched_bills or line.bill_no in settled_bill_nos or paid_elsewhere:
            status = MatchStatus.DUPLICATE_DEDUCTION
        else:
            status = MatchStatus.UNRECORDED_RECEIPT
        outcome.results.append(MatchResult(status, line, None, EXCEPTION_TEXT[status]))

    if lines:
        channels = {line.channel for line in lines}
        first = min(line.value_date for line in lines) - timedelta(days=settlement_lag_days)
        last = max(line.value_date for line in lines) - timedelta(days=settlement_lag_days)
        for payment in pool:
            if payment.payment_id in used or payment.channel not in channels:
                continue
            if first <= payment.paid_on <= last:
                outcome.results.append(
                    MatchResult(MatchStatus.MONEY_NOT_RECEIVED, None, payment,
                                EXCEPTION_TEXT[MatchStatus.MONEY_NOT_RECEIVED])
                )
    return outcome
