"""Bank-statement parsing and matching (电费对账): header, set-aside lines, exception kinds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_core.operations.reconciliation import (
    STATEMENT_HEADER,
    KnownPayment,
    MatchStatus,
    StatementFormatError,
    match_statement,
    parse_statement,
)

HEADER = ",".join(STATEMENT_HEADER)
ACCOUNTS = {"440100000001", "440100000002"}


def csv_bytes(*rows: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode(encoding)


def test_good_lines_are_parsed_exactly() -> None:
    parsed = parse_statement(
        csv_bytes("T1,2026-08-03,440100000001,GD202607000001,242.55,CNY,bank_withholding,张三"), ACCOUNTS
    )
    assert parsed.set_aside == []
    (line,) = parsed.lines
    assert line.amount == Decimal("242.55") and line.value_date == date(2026, 8, 3) and line.line_no == 2
    assert line.payer_name == "张三"


@pytest.mark.parametrize(
    "header",
    [
        "bank_txn_id,value_date,account_no,bill_no,amount,currency,channel",  # a column missing
        "txn,value_date,account_no,bill_no,amount,currency,channel,payer_name",  # renamed
        "value_date,bank_txn_id,account_no,bill_no,amount,currency,channel,payer_name",  # reordered
    ],
)
def test_a_wrong_header_rejects_the_whole_file(header: str) -> None:
    data = csv_bytes("T1,2026-08-03,440100000001,GD1,1.00,CNY,alipay,张三", header=header)
    with pytest.raises(StatementFormatError) as err:
        parse_statement(data, ACCOUNTS)
    assert err.value.field == "header"


def test_an_empty_file_is_rejected() -> None:
    with pytest.raises(StatementFormatError):
        parse_statement(b"", ACCOUNTS)


def test_bad_lines_are_set_aside_with_line_number_and_reason() -> None:
    data = csv_bytes(
        "T1,2026-08-03,440100000001,GD1,100.00,CNY,alipay,张三",  # line 2: good
        "T2,2026-13-03,440100000001,GD1,100.00,CNY,alipay,张三",  # line 3: bad date
        "T3,2026-08-03,440100000001,GD1,1O0.00,CNY,alipay,张三",  # line 4: letter O in amount
        "T4,2026-08-03,999999999999,GD1,100.00,CNY,alipay,张三",  # line 5: unknown account
        "T5,2026-08-03,440100000002,GD2,-5.00,CNY,alipay,李四",  # line 6: negative
        "T6,2026-08-03,440100000002,GD2,5.00,USD,alipay,李四",  # line 7: currency
        "T1,2026-08-04,440100000002,GD2,5.00,CNY,alipay,李四",  # line 8: txn id repeated
        "T8,2026-08-04,440100000002,GD2,5.00,CNY,alipay",  # line 9: a column short
        "T9,2026-08-04,440100000002,GD2,5.001,CNY,alipay,李四",  # line 10: below the fen
    )
    parsed = parse_statement(data, ACCOUNTS)
    assert [line.line_no for line in parsed.lines] == [2]
    reasons = {item.line_no: item.reason for item in parsed.set_aside}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert reasons[3].startswith("value_date")
    assert reasons[4].startswith("amount")
    assert reasons[5].startswith("account_no")
    assert reasons[6].startswith("amount")
    assert reasons[7].startswith("currency")
    assert "第 2 行" in reasons[8]
    assert "列数" in reasons[9]
    assert reasons[10].startswith("amount")
    assert parsed.total_lines == 9


def test_gb18030_files_and_bom_are_read() -> None:
    row = "T1,2026-08-03,440100000001,GD1,100.00,CNY,counter,王五"
    assert parse_statement(csv_bytes(row, encoding="gb18030"), ACCOUNTS).lines[0].payer_name == "王五"
    assert parse_statement(b"\xef\xbb\xbf" + csv_bytes(row), ACCOUNTS).lines[0].bank_txn_id == "T1"


def payment(pid: int, bill_no: str, amount: str, ref: str | None = None, day: int = 3,
            account: str = "440100000001", channel: str = "bank_withholding") -> KnownPayment:
    return KnownPayment(pid, bill_no, account, Decimal(amount), channel, date(2026, 8, day), ref)


BILLS = {"GD1": "440100000001", "GD2": "440100000002", "GD3": "440100000001"}


def lines_of(*rows: str):
    return parse_statement(csv_bytes(*rows), ACCOUNTS).lines


def test_matching_by_reference_then_by_bill_and_amount() -> None:
    lines = lines_of(
        "B1,2026-08-03,440100000001,GD1,100.00,CNY,bank_withholding,张三",
        "B2,2026-08-03,440100000002,GD2,50.00,CNY,bank_withholding,李四",
    )
    outcome = match_statement(lines, [payment(1, "GD1", "100.00", ref="B1"),
                                      payment(2, "GD2", "50.00", account="440100000002")], BILLS)
    assert [(r.status, r.payment.payment_id) for r in outcome.results] == [
        (MatchStatus.MATCHED, 1), (MatchStatus.MATCHED, 2)]
    assert outcome.exceptions == []


def test_each_exception_kind() -> None:
    lines = lines_of(
        "B1,2026-08-03,440100000001,GD1,100.00,CNY,bank_withholding,张三",  # matched
        "B2,2026-08-03,440100000001,GD1,100.00,CNY,bank_withholding,张三",  # deducted twice
        "B3,2026-08-03,440100000002,GD2,55.00,CNY,bank_withholding,李四",  # system says 50.00
        "B4,2026-08-04,440100000001,GD4,30.00,CNY,bank_withholding,张三",  # no payment recorded
        "B6,2026-08-04,440100000001,GD3,70.00,CNY,bank_withholding,张三",  # paid by Alipay already
        "B5,2026-08-04,440100000002,GD1,30.00,CNY,bank_withholding,李四",  # bill of another account
    )
    payments = [
        payment(1, "GD1", "100.00"),
        payment(2, "GD2", "50.00", account="440100000002"),
        payment(3, "GD3", "70.00", day=2, channel="alipay"),  # another channel: not on this file
        payment(4, "GD9", "80.00", day=3),  # recorded, never arrived
        payment(5, "GD8", "80.00", day=5),  # after the statement's range: not yet due to arrive
    ]
    outcome = match_statement(lines, payments, {**BILLS, "GD4": "440100000001", "GD8": "440100000001", "GD9": "440100000001"})
    statuses = [(r.status, r.line.bank_txn_id if r.line else r.payment.payment_id) for r in outcome.results]
    assert statuses == [
        (MatchStatus.MATCHED, "B1"),
        (MatchStatus.DUPLICATE_DEDUCTION, "B2"),
        (MatchStatus.AMOUNT_MISMATCH, "B3"),
        (MatchStatus.UNRECORDED_RECEIPT, "B4"),
        (MatchStatus.DUPLICATE_DEDUCTION, "B6"),
        (MatchStatus.UNKNOWN_BILL, "B5"),
        (MatchStatus.MONEY_NOT_RECEIVED, 4),
    ]
    mismatch = outcome.results[2]
    assert "55.00" in mismatch.reason and "50.00" in mismatch.reason


def test_a_bill_settled_by_an_earlier_statement_is_a_duplicate() -> None:
    lines = lines_of("B9,2026-08-10,440100000001,GD1,100.00,CNY,bank_withholding,张三")
    outcome = match_statement(lines, [], BILLS, settled_bill_nos={"GD1"})
    assert [r.status for r in outcome.results] == [MatchStatus.DUPLICATE_DEDUCTION]


# --- importing into the database (SQLite and PostgreSQL) -----------------------------------------

from datetime import UTC, datetime  # noqa: E402

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import billing_core.operations.reconciliation_store as store  # noqa: E402
from billing_core.db.models import BillStatus, Payment, PaymentChannel, WorkOrder, WorkOrderKind  # noqa: E402
from billing_core.db.operations_models import StatementImport, StatementLineRow  # noqa: E402
from billing_core.operations.reconciliation_store import import_statement  # noqa: E402
from tests.billing.ops_factories import add_bill, add_customer  # noqa: E402


def seed_bank_month(session: Session) -> None:
    """Two customers, four bills, three withholding payments recorded in August."""
    one, two = add_customer(session, 1, withholding=True), add_customer(session, 2, withholding=True)
    for n, (customer, amount) in enumerate([(one, "100.00"), (two, "50.00"), (one, "30.00"), (two, "80.00")], 1):
        add_bill(session, customer, f"2026-0{n + 2}", "100", amount, status=BillStatus.PAID, bill_no=f"GD{n}")
    bills = {b: i for i, b in enumerate(["GD1", "GD2", "GD3", "GD4"], 1)}
    for key, bill_no, amount, day in [("P1", "GD1", "100.00", 3), ("P2", "GD2", "50.00", 3), ("P4", "GD4", "80.00", 3)]:
        session.add(Payment(bill_id=bills[bill_no], customer_id=1 if bill_no in ("GD1", "GD3") else 2,
                            amount=Decimal(amount), channel=PaymentChannel.BANK_WITHHOLDING,
                            paid_at=datetime(2026, 8, day, 10, tzinfo=UTC), idempotency_key=key, external_ref=key))
    session.commit()


STATEMENT = csv_bytes(
    "B1,2026-08-04,440100000001,GD1,100.00,CNY,bank_withholding,测试客户1",  # matched
    "B2,2026-08-04,440100000002,GD2,55.00,CNY,bank_withholding,测试客户2",  # amount mismatch
    "B3,2026-08-04,440100000001,GD3,30.00,CNY,bank_withholding,测试客户1",  # no payment recorded
    "B4,2026-08-04,440100000001,GD1,100.00,CNY,bank_withholding,测试客户1",  # deducted twice
    "B5,2026-08-3x,440100000001,GD1,100.00,CNY,bank_withholding,测试客户1",  # bad date: set aside
    "B6,2026-08-04,440199999999,GD1,100.00,CNY,bank_withholding,某人",  # unknown account
)  # and P4 (GD4, 80.00) has no bank line: money not received


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_import_matches_and_opens_a_work_order_per_exception(session: Session) -> None:
    seed_bank_month(session)
    result = import_statement(session, STATEMENT, "bank-2026-08-04.csv")
    session.commit()
    assert (result.total_lines, result.matched) == (6, 1)
    assert result.exceptions == {"amount_mismatch": 1, "unrecorded_receipt": 1, "duplicate_deduction": 1,
                                 "money_not_received": 1}
    assert [(a.line_no, a.reason.split(":")[0]) for a in result.set_aside] == [(6, "value_date"), (7, "account_no")]
    assert "第 6 行搁置" in result.summary()
    lines = {row.line_no: row for row in session.scalars(select(StatementLineRow))}
    assert sorted(lines) == [2, 3, 4, 5, 6, 7]
    assert lines[2].status.value == "matched" and lines[2].payment_id is not None
    assert lines[6].status.value == "set_aside" and lines[6].raw.startswith("B5,")
    orders = session.scalars(select(WorkOrder).order_by(WorkOrder.no)).all()
    assert len(orders) == 4 and {o.kind for o in orders} == {WorkOrderKind.RECONCILIATION}
    assert {o.payload["status"] for o in orders} == set(result.exceptions)
    assert lines[3].work_order_id in {o.id for o in orders}


def test_importing_the_same_file_twice_changes_nothing(session: Session) -> None:
    seed_bank_month(session)
    import_statement(session, STATEMENT, "a.csv")
    session.commit()
    before = (count(session, StatementLineRow), count(session, WorkOrder))
    again = import_statement(session, STATEMENT, "a-copy.csv")
    session.commit()
    assert again.already_imported and "未做任何更改" in again.summary()
    assert (count(session, StatementLineRow), count(session, WorkOrder)) == before
    assert count(session, StatementImport) == 1


def test_a_transaction_in_a_later_file_is_set_aside_and_a_second_deduction_is_a_duplicate(session: Session) -> None:
    seed_bank_month(session)
    import_statement(session, STATEMENT, "a.csv")
    session.commit()
    later = import_statement(session, csv_bytes(
        "B1,2026-08-04,440100000001,GD1,100.00,CNY,bank_withholding,测试客户1",  # same transaction again
        "B9,2026-08-20,440100000001,GD1,100.00,CNY,bank_withholding,测试客户1",  # GD1 charged once more
    ), "b.csv")
    session.commit()
    assert [a.line_no for a in later.set_aside] == [2] and "已在之前" in later.set_aside[0].reason
    assert later.exceptions == {"duplicate_deduction": 1}


def test_a_wrong_header_writes_nothing(session: Session) -> None:
    seed_bank_month(session)
    with pytest.raises(StatementFormatError):
        import_statement(session, csv_bytes("B1,2026-08-04,440100000001,GD1,100.00,CNY,x,y",
                                            header="id,date,account,bill,amount,currency,channel,name"), "bad.csv")
    session.rollback()
    assert count(session, StatementImport) == 0 and count(session, StatementLineRow) == 0


def test_a_failure_half_way_leaves_no_half_import(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_bank_month(session)

    def disk_full(*_args: object, **_kw: object) -> None:
        raise OSError("disk full while writing lines")

    monkeypatch.setattr(store, "_line_row", disk_full)  # fails after the import row and work orders
    with pytest.raises(OSError):
        import_statement(session, STATEMENT, "a.csv")
    session.rollback()
    assert (count(session, StatementImport), count(session, StatementLineRow), count(session, WorkOrder)) == (0, 0, 0)
    monkeypatch.undo()
    assert import_statement(session, STATEMENT, "a.csv").matched == 1  # and it imports cleanly afterwards
