"""Importing a bank statement into the database: parse, match, record, open exception work orders.

Everything happens in the caller's one transaction: the import record, every line (matched,
exception or set aside with its reason), and a reconciliation work order per exception. If any
step fails the caller rolls back and the file is not half-imported; importing the same file again
(same SHA-256) changes nothing and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from billing_core.db.models import Bill, Customer, Payment, PaymentStatus, WorkOrderKind
from billing_core.db.operations_models import StatementImport, StatementLineRow, StatementLineStatus
from billing_core.operations.policy import OperationsPolicy, load_policy
from billing_core.operations.reconciliation import (
    KnownPayment,
    MatchResult,
    MatchStatus,
    SetAsideLine,
    StatementLine,
    match_statement,
    parse_statement,
)
from billing_core.operations.work_orders import WorkOrderNumbers, open_work_orders, work_order_row

# How far before a statement's first value date an unreconciled payment may still be its match.
PAYMENT_LOOKBACK = timedelta(days=45)


@dataclass
class ImportResult:
    file_name: str
    already_imported: bool = False
    import_id: int | None = None
    total_lines: int = 0
    matched: int = 0
    set_aside: list[SetAsideLine] = field(default_factory=list)
    exceptions: dict[str, int] = field(default_factory=dict)
    work_orders: int = 0

    def summary(self) -> str:
        if self.already_imported:
            return f"对账文件 {self.file_name} 已导入过，本次未做任何更改。"
        exceptions = "，".join(f"{k} {v}" for k, v in sorted(self.exceptions.items())) or "无"
        text = (
            f"对账文件 {self.file_name}：共 {self.total_lines} 笔，自动对账成功 {self.matched} 笔，"
            f"异常：{exceptions}，搁置 {len(self.set_aside)} 笔，生成对账工单 {self.work_orders} 张。"
        )
        for line in self.set_aside:
            text += f"\n  第 {line.line_no} 行搁置：{line.reason}"
        return text


def import_statement_file(session: Session, path: Path, policy: OperationsPolicy | None = None) -> ImportResult:
    return import_statement(session, path.read_bytes(), path.name, policy)


def import_statement(
    session: Session, data: bytes, file_name: str, policy: OperationsPolicy | None = None
) -> ImportResult:
    """Import one statement (the caller commits). A wrong header raises `StatementFormatError`."""
    policy = policy or load_policy()
    result = ImportResult(file_name)
    accounts = set(session.scalars(select(Customer.account_no)))
    parsed = parse_statement(data, accounts)  # raises before anything is written
    if session.scalar(select(StatementImport.id).where(StatementImport.sha256 == parsed.sha256)):
        result.already_imported = True
        return result

    lines, set_aside = _drop_known_transactions(session, parsed.lines, list(parsed.set_aside))
    bill_nos = sorted({line.bill_no for line in lines})
    bills: dict[str, tuple[int, str, str]] = {}
    for start in range(0, len(bill_nos), 1000):
        rows = session.execute(
            select(Bill.bill_no, Bill.id, Customer.account_no, Bill.period)
            .join(Customer, Customer.id == Bill.customer_id)
            .where(Bill.bill_no.in_(bill_nos[start : start + 1000]))
        )
        bills.update({bill_no: (bill_id, account, period) for bill_no, bill_id, account, period in rows})
    outcome = match_statement(
        lines,
        _open_payments(session, lines),
        {bill_no: account for bill_no, (_, account, _) in bills.items()},
        settled_bill_nos=_settled(session, bill_nos),
        settlement_lag_days=policy.reconciliation.settlement_lag_days,
    )

    record = StatementImport(
        file_name=file_name[:255],
        sha256=parsed.sha256,
        first_value_date=min((line.value_date for line in lines), default=None),
        last_value_date=max((line.value_date for line in lines), default=None),
        total_lines=parsed.total_lines,
        matched_lines=len(outcome.matched),
        exception_lines=sum(1 for r in outcome.exceptions if r.line is not None),
        set_aside_lines=len(set_aside),
        missing_receipts=sum(1 for r in outcome.exceptions if r.line is None),
    )
    session.add(record)
    session.flush()

    today = datetime.now(UTC).date()
    numbers = WorkOrderNumbers(session, today)
    orders = [(_exception_order(next(numbers), r, bills), r) for r in outcome.exceptions]
    order_ids = open_work_orders(session, [row for row, _ in orders])
    order_of_line = {id(r): order_ids[row["no"]] for row, r in orders}

    rows: list[dict[str, Any]] = []
    for r in outcome.results:
        if r.line is None:
            continue
        rows.append(_line_row(record.id, r.line, StatementLineStatus(r.status.value), r.reason,
                              r.payment.payment_id if r.payment and not r.is_exception else None,
                              order_of_line.get(id(r))))
    for aside in set_aside:
        rows.append({"import_id": record.id, "line_no": aside.line_no, "raw": aside.raw, "bank_txn_id": None,
                     "value_date": None, "account_no": None, "bill_no": None, "amount": None, "channel": None,
                     "status": StatementLineStatus.SET_ASIDE, "reason": aside.reason, "payment_id": None,
                     "work_order_id": None})
    if rows:
        session.execute(insert(StatementLineRow.__table__), rows)
    session.flush()

    result.import_id = record.id
    result.total_lines = parsed.total_lines
    result.matched = len(outcome.matched)
    result.set_aside = sorted(set_aside, key=lambda item: item.line_no)
    for r in outcome.exceptions:
        result.exceptions[r.status.value] = result.exceptions.get(r.status.value, 0) + 1
    result.work_orders = len(orders)
    return result


def _drop_known_transactions(
    session: Session, lines: list[StatementLine], set_aside: list[SetAsideLine]
) -> tuple[list[StatementLine], list[SetAsideLine]]:
    """A bank transaction already imported from another file is set aside, not counted twice."""
    ids = [line.bank_txn_id for line in lines]
    known: set[str] = set()
    for start in range(0, len(ids), 1000):
        known |= set(session.scalars(
            select(StatementLineRow.bank_txn_id).where(StatementLineRow.bank_txn_id.in_(ids[start : start + 1000]))
        ))
    keep = []
    for line in lines:
        if line.bank_txn_id in known:
            raw = ",".join([line.bank_txn_id, line.value_date.isoformat(), line.account_no, line.bill_no,
                            str(line.amount), line.currency, line.channel, line.payer_name])
            set_aside.append(SetAsideLine(line.line_no, raw, f"bank_txn_id: 流水号 {line.bank_txn_id} 已在之前的对账文件中导入"))
        else:
            keep.append(line)
    return keep, set_aside


def _open_payments(session: Session, lines: list[StatementLine]) -> list[KnownPayment]:
    """Succeeded payments of the statement's channels not yet matched to any bank line."""
    if not lines:
        return []
    channels = sorted({line.channel for line in lines})
    first = min(line.value_date for line in lines) - PAYMENT_LOOKBACK
    last = max(line.value_date for line in lines) + timedelta(days=1)
    matched = select(StatementLineRow.payment_id).where(StatementLineRow.payment_id.is_not(None))
    rows = session.execute(
        select(Payment.id, Bill.bill_no, Customer.account_no, Payment.amount, Payment.channel, Payment.paid_at,
               Payment.external_ref)
        .join(Bill, Bill.id == Payment.bill_id)
        .join(Customer, Customer.id == Payment.customer_id)
        .where(
            Payment.status == PaymentStatus.SUCCEEDED,
            Payment.channel.in_(channels),
            Payment.paid_at >= datetime.combine(first, datetime.min.time(), tzinfo=UTC),
            Payment.paid_at < datetime.combine(last, datetime.min.time(), tzinfo=UTC),
            Payment.id.not_in(matched),
        )
        .order_by(Payment.paid_at, Payment.id)
    )
    return [
        KnownPayment(pid, bill_no or "", account, amount, str(channel), paid_at.astimezone(UTC).date(), ref)
        for pid, bill_no, account, amount, channel, paid_at, ref in rows
    ]


def _settled(session: Session, bill_nos: list[str]) -> set[str]:
    """Bills a bank line of an earlier statement already paid."""
    settled: set[str] = set()
    for start in range(0, len(bill_nos), 1000):
        settled |= set(session.scalars(
            select(StatementLineRow.bill_no).where(
                StatementLineRow.bill_no.in_(bill_nos[start : start + 1000]),
                StatementLineRow.status == StatementLineStatus.MATCHED,
            )
        ))
    return settled


def _line_row(import_id: int, line: StatementLine, status: StatementLineStatus, reason: str,
              payment_id: int | None, work_order_id: int | None) -> dict[str, Any]:
    return {
        "import_id": import_id, "line_no": line.line_no,
        "raw": ",".join([line.bank_txn_id, line.value_date.isoformat(), line.account_no, line.bill_no,
                         str(line.amount), line.currency, line.channel, line.payer_name]),
        "bank_txn_id": line.bank_txn_id, "value_date": line.value_date, "account_no": line.account_no,
        "bill_no": line.bill_no, "amount": line.amount, "channel": line.channel, "status": status,
        "reason": reason, "payment_id": payment_id, "work_order_id": work_order_id,
    }


def _exception_order(number: str, r: MatchResult, bills: dict[str, tuple[int, str, str]]) -> dict[str, Any]:
    line, payment = r.line, r.payment
    bill_no = line.bill_no if line else payment.bill_no if payment else None
    bill = bills.get(bill_no or "")
    if line is not None:
        title = f"对账异常（{r.status.value}）：流水 {line.bank_txn_id} 账单 {line.bill_no} {line.amount} 元"
        description = f"{r.reason}。银行流水 {line.bank_txn_id}，到账日 {line.value_date}，户号 {line.account_no}，" \
                      f"金额 {line.amount} 元，渠道 {line.channel}，付款人 {line.payer_name}。"
    else:
        assert payment is not None
        title = f"对账异常（{r.status.value}）：缴费 #{payment.payment_id} 账单 {payment.bill_no} {payment.amount} 元"
        description = f"{r.reason}。系统缴费记录 #{payment.payment_id}，{payment.paid_on} 经 {payment.channel} " \
                      f"缴费 {payment.amount} 元，对账单中未见到账。"
    payload: dict[str, Any] = {"status": r.status.value}
    if line is not None:
        payload.update(bank_txn_id=line.bank_txn_id, line_no=line.line_no, amount=str(line.amount))
    if payment is not None:
        payload.update(payment_id=payment.payment_id, payment_amount=str(payment.amount))
    return work_order_row(
        number, WorkOrderKind.RECONCILIATION, title, description,
        account_no=line.account_no if line else payment.account_no if payment else None,
        bill_id=bill[0] if bill and r.status is not MatchStatus.UNKNOWN_BILL else None,
        period=bill[2] if bill and r.status is not MatchStatus.UNKNOWN_BILL else None,
        channel="reconciliation", payload=payload,
    )
