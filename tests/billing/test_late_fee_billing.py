"""Late fees (违约金) reach the next bill once: dunning accrues, the cycle bills (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_core.bill_types import LATE_FEE_LINE_CODE, Usage
from billing_core.cycle.run import release_reviewed_bills, run_cycle
from billing_core.db.engine import make_engine
from billing_core.operations.dunning_store import run_dunning
from billing_core.operations.kpi_store import period_kpis
from billing_core.db.models import Bill, BillLine, BillStatus, Customer, WorkOrder, WorkOrderStatus
from billing_core.db.operations_models import LateFeeAccrual, OutboxNotification
from tests.billing.ops_factories import add_bill, add_customer

JUNE_DUE = date(2026, 7, 17)


def flat_usage(kwh: dict[int, str]):  # noqa: ANN201 - a UsageLoader
    """Usage from a table (customer id → kWh), 300 kWh for anyone else: no readings needed."""

    def load(session: Session, ids: Sequence[int], start: date, end: date) -> dict[int, Usage]:
        return {cid: Usage(total_kwh=Decimal(kwh.get(cid, "300"))) for cid in ids}

    return load


def seed(session: Session) -> dict[str, Customer]:
    """`late` never paid June's bill; `prompt` has no arrears."""
    late = add_customer(session, 1, openid="wx-1")
    add_bill(session, late, "2026-06", "300", "180.00", BillStatus.ISSUED, "GD202606440100000001", JUNE_DUE)
    prompt = add_customer(session, 2)
    add_bill(session, prompt, "2026-06", "300", "180.00", BillStatus.PAID, "GD202606440100000002", JUNE_DUE)
    session.commit()
    return {"late": late, "prompt": prompt}


def bill_of(session: Session, customer: Customer, period: str) -> Bill:
    return session.scalar(select(Bill).where(Bill.customer_id == customer.id, Bill.period == period))


def fee_lines(bill: Bill) -> list[BillLine]:
    return [line for line in bill.lines if line.code == LATE_FEE_LINE_CODE]


def test_the_accrued_fee_is_billed_once_on_the_next_bill(session: Session) -> None:
    people = seed(session)
    run_dunning(session, date(2026, 7, 31))  # 14 days: 180 × 0.001 × 14 = 2.52
    session.commit()
    accrual = session.scalar(select(LateFeeAccrual))
    assert accrual.amount == Decimal("2.52") and accrual.billed_bill_id is None

    result = run_cycle(session, "2026-07", issue_date=date(2026, 8, 2), usage_loader=flat_usage({}))
    session.commit()
    july = bill_of(session, people["late"], "2026-07")
    assert july.status is BillStatus.ISSUED
    [line] = fee_lines(july)
    assert (line.name, line.amount, line.quantity, line.unit_price) == ("违约金", Decimal("2.52"), 1, Decimal("2.52"))
    assert "2026-06" in line.explanation and "GD202606440100000001" in line.explanation
    assert line.position == max(other.position for other in july.lines)  # after the energy lines
    energy = sum(other.amount for other in july.lines if other.code != LATE_FEE_LINE_CODE)
    assert july.amount == energy + Decimal("2.52")
    assert july.to_computed(account_no="").total == july.amount
    assert (result.late_fee_bills, result.late_fees) == (1, Decimal("2.52"))
    assert "违约金共 2.52 元" in result.summary()
    session.refresh(accrual)
    assert accrual.billed_bill_id == july.id
    sms = session.scalar(select(OutboxNotification.body).where(OutboxNotification.bill_id == july.id,
                                                               OutboxNotification.channel == "sms"))
    assert f"{july.amount}元" in sms  # the customer is told the total with the fee

    other = bill_of(session, people["prompt"], "2026-07")
    assert other.status is BillStatus.ISSUED and fee_lines(other) == []
    assert other.amount == sum(line.amount for line in other.lines)

    # Dunning again the same day and the cycle again: nothing more is billed.
    run_dunning(session, date(2026, 7, 31))
    assert run_cycle(session, "2026-07", issue_date=date(2026, 8, 3), usage_loader=flat_usage({})).already_done
    session.commit()
    assert session.scalar(select(func.count()).select_from(BillLine).where(BillLine.code == LATE_FEE_LINE_CODE)) == 1


def test_a_later_count_bills_only_what_was_not_billed_before(session: Session) -> None:
    people = seed(session)
    run_dunning(session, date(2026, 7, 31))
    session.commit()
    run_cycle(session, "2026-07", issue_date=date(2026, 8, 2), usage_loader=flat_usage({}))
    session.commit()
    # June still unpaid and July now overdue too (due 2026-08-17).
    run_dunning(session, date(2026, 8, 31))
    session.commit()
    june_total = session.scalar(select(LateFeeAccrual.amount).join(Bill, Bill.id == LateFeeAccrual.bill_id).where(
        Bill.period == "2026-06", LateFeeAccrual.as_of == date(2026, 8, 31)))
    assert june_total == Decimal("8.10")  # 180 × 0.001 × 45
    run_cycle(session, "2026-08", issue_date=date(2026, 9, 2), usage_loader=flat_usage({}))
    session.commit()
    august = bill_of(session, people["late"], "2026-08")
    by_period = {("2026-06" in line.explanation): line for line in fee_lines(august)}
    assert by_period[True].amount == Decimal("5.58")  # 8.10 − 2.52 already on July's bill
    assert "已收取 2.52 元" in by_period[True].explanation
    july = bill_of(session, people["late"], "2026-07")
    assert "GD202607440100000001" in by_period[False].explanation
    july_fee = session.scalar(select(LateFeeAccrual.amount).where(LateFeeAccrual.bill_id == july.id))
    assert by_period[False].amount == july_fee
    all_june = session.scalar(select(func.sum(BillLine.amount)).where(
        BillLine.code == LATE_FEE_LINE_CODE, BillLine.explanation.contains("2026-06")))
    assert all_june == june_total  # over both bills, June's fee is charged exactly once
    assert session.scalar(select(func.count()).select_from(LateFeeAccrual).where(
        LateFeeAccrual.billed_bill_id.is_(None))) == 0

    # The KPIs still compute; 应收电费 is what the issued bills ask for, fees included.
    kpis = {kpi.code: kpi for kpi in period_kpis(session, "2026-08")}
    issued = session.scalars(select(Bill.amount).where(Bill.period == "2026-08")).all()
    assert kpis["collection_rate"].denominator == sum(issued) and kpis["issue_rate"].numerator == 2


def test_a_held_bill_gets_the_fee_when_it_is_released(session: Session) -> None:
    people = seed(session)
    run_dunning(session, date(2026, 7, 31))
    session.commit()
    run_cycle(session, "2026-07", issue_date=date(2026, 8, 2), usage_loader=flat_usage({people["late"].id: "900"}))
    session.commit()
    july = bill_of(session, people["late"], "2026-07")
    assert july.status is BillStatus.HELD and fee_lines(july) == []
    assert session.scalar(select(LateFeeAccrual.billed_bill_id)) is None
    review = session.scalar(select(WorkOrder).where(WorkOrder.bill_id == july.id))
    review.status = WorkOrderStatus.RESOLVED
    session.commit()
    release_reviewed_bills(session, "2026-07", issue_date=date(2026, 8, 5))
    session.commit()
    session.refresh(july)
    session.expire(july, ["lines"])
    assert july.status is BillStatus.ISSUED
    [line] = fee_lines(july)
    assert line.amount == Decimal("2.52") and july.amount == sum(other.amount for other in july.lines)
    assert session.scalar(select(LateFeeAccrual.billed_bill_id)) == july.id


# PostgreSQL only: SQLite lets one writer at a time, so the row-lock race exists only there.
@pytest.mark.parametrize("empty_database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_a_concurrent_cycle_does_not_bill_the_fee_again(session: Session, database_url: str) -> None:
    people = seed(session)
    run_dunning(session, date(2026, 7, 31))
    session.commit()
    run_cycle(session, "2026-07", issue_date=date(2026, 8, 2), usage_loader=flat_usage({}))  # not committed yet

    engine = make_engine(database_url)
    errors: list[BaseException] = []

    def rival() -> None:
        try:
            with Session(engine) as other:
                run_cycle(other, "2026-08", issue_date=date(2026, 9, 2), usage_loader=flat_usage({}))
                other.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=rival)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()  # waiting on the accrual rows this transaction locked
    session.commit()
    thread.join(30)
    engine.dispose()
    assert not errors
    lines = session.execute(select(Bill.period, BillLine.amount).join(Bill, Bill.id == BillLine.bill_id).where(
        BillLine.code == LATE_FEE_LINE_CODE, Bill.customer_id == people["late"].id)).all()
    assert lines == [("2026-07", Decimal("2.52"))]


def test_no_fee_is_charged_on_an_earlier_fee(session: Session) -> None:
    """July's bill carries June's 违约金; when July is overdue too, its fee counts only July's
    electricity charges, and payments count against those charges first."""
    people = seed(session)
    run_dunning(session, date(2026, 7, 31))
    session.commit()
    run_cycle(session, "2026-07", issue_date=date(2026, 8, 2), usage_loader=flat_usage({}))
    session.commit()
    july = bill_of(session, people["late"], "2026-07")
    [fee_line] = fee_lines(july)
    energy = july.amount - fee_line.amount
    assert fee_line.amount == Decimal("2.52")

    as_of = july.due_date + (date(2026, 1, 11) - date(2026, 1, 1))  # ten days late
    run_dunning(session, as_of)
    session.commit()
    accrual = session.scalar(select(LateFeeAccrual).where(LateFeeAccrual.bill_id == july.id))
    assert accrual.principal == energy  # not energy + 2.52
    assert accrual.amount == (energy * Decimal("0.001") * accrual.days).quantize(Decimal("0.01"), ROUND_HALF_UP)
