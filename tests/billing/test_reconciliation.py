"""Bank-statement parsing and matching (电费对账): header, set-aside lines, exception kinds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_core.reconciliation import (
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
