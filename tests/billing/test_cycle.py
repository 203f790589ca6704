"""The monthly billing cycle: read → compute → verify → issue, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from billing_core.db.migrate import alembic_config


def test_the_billing_migration_chain_has_a_single_head() -> None:
    """Two revisions on the same parent would make `db upgrade` refuse to run."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads


from datetime import date, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from billing_core.cycle.run import release_reviewed_bills, run_cycle  # noqa: E402
from billing_core.db.models import Bill, BillLine, BillStatus, WorkOrder, WorkOrderKind, WorkOrderStatus  # noqa: E402
from billing_core.db.operations_models import CycleRun, OutboxNotification  # noqa: E402
from tests.billing.ops_factories import add_bill, add_customer, add_daily_readings, add_meter  # noqa: E402

ISSUE = date(2026, 8, 2)
JULY_FIRST, JULY_LAST = date(2026, 6, 30), date(2026, 7, 31)


def seed_july(session: Session) -> dict[str, object]:
    """Three households: one ordinary, one whose use tripled, one whose meter ran backwards."""
    steady = add_customer(session, 1, openid="wx-openid-1")
    add_daily_readings(session, add_meter(session, steady), JULY_FIRST, JULY_LAST, "1000", "12.903")
    add_bill(session, steady, "2026-06", "380", "223.77", bill_no="GD2026064401000000001")
    jumped = add_customer(session, 2, phone=None, openid=None)
    add_daily_readings(session, add_meter(session, jumped), JULY_FIRST, JULY_LAST, "5000", "12.903")
    add_bill(session, jumped, "2026-06", "120", "70.66", bill_no="GD2026064401000000002")
    backwards = add_customer(session, 3)
    add_daily_readings(session, add_meter(session, backwards), JULY_FIRST, JULY_LAST, "8000", "10",
                       overrides={date(2026, 7, 20): "100"})
    session.commit()
    return {"steady": steady, "jumped": jumped, "backwards": backwards}


def test_cycle_issues_clean_bills_holds_flagged_ones_and_blocks_bad_readings(session: Session) -> None:
    people = seed_july(session)
    result = run_cycle(session, "2026-07", issue_date=ISSUE)
    session.commit()
    assert (result.bills_computed, result.bills_issued, result.bills_held, result.blocked) == (2, 1, 1, 1)
    assert result.hits_by_rule == {"consumption_jump_last_month": 1, "reading_decreased": 1}

    steady = session.scalar(select(Bill).where(Bill.customer_id == people["steady"].id, Bill.period == "2026-07"))
    assert steady.status is BillStatus.ISSUED
    assert steady.bill_no == "GD202607440100000001"
    assert steady.due_date == ISSUE + timedelta(days=15)
    assert steady.total_kwh == Decimal("399.993")  # 31 days × 12.903 kWh
    assert steady.amount == sum(line.amount for line in steady.lines)
    assert [line.code for line in steady.lines] == ["tier_1", "tier_2"]

    jumped = session.scalar(select(Bill).where(Bill.customer_id == people["jumped"].id, Bill.period == "2026-07"))
    assert jumped.status is BillStatus.HELD and jumped.bill_no is None and jumped.due_date is None
    review = session.scalar(select(WorkOrder).where(WorkOrder.bill_id == jumped.id))
    assert review.kind is WorkOrderKind.REVIEW and review.payload["rules"] == ["consumption_jump_last_month"]

    blocked = session.scalar(select(WorkOrder).where(WorkOrder.account_no == people["backwards"].account_no))
    assert blocked.bill_id is None and "reading_decreased" in blocked.payload["rules"]
    assert session.scalar(select(func.count()).select_from(Bill).where(
        Bill.customer_id == people["backwards"].id, Bill.period == "2026-07")) == 0

    messages = session.scalars(select(OutboxNotification).order_by(OutboxNotification.channel)).all()
    assert [(m.channel.value, m.bill_id) for m in messages] == [("sms", steady.id), ("wechat_template", steady.id)]
    assert f"{steady.amount}元" in messages[0].body and "2026-08-17" in messages[0].body


def test_running_an_issued_period_again_changes_nothing(session: Session) -> None:
    seed_july(session)
    run_cycle(session, "2026-07", issue_date=ISSUE)
    session.commit()
    counts = [session.scalar(select(func.count()).select_from(t)) for t in (Bill, BillLine, WorkOrder, OutboxNotification)]
    again = run_cycle(session, "2026-07", issue_date=ISSUE + timedelta(days=1))
    session.commit()
    assert again.already_done and "未做任何更改" in again.summary()
    assert [session.scalar(select(func.count()).select_from(t))
            for t in (Bill, BillLine, WorkOrder, OutboxNotification)] == counts


def test_a_held_bill_is_issued_once_its_review_is_resolved(session: Session) -> None:
    people = seed_july(session)
    run_cycle(session, "2026-07", issue_date=ISSUE)
    session.commit()
    assert release_reviewed_bills(session, "2026-07", issue_date=ISSUE).released == 0
    jumped = session.scalar(select(Bill).where(Bill.customer_id == people["jumped"].id, Bill.period == "2026-07"))
    review = session.scalar(select(WorkOrder).where(WorkOrder.bill_id == jumped.id))
    review.status = WorkOrderStatus.RESOLVED
    session.commit()
    released = release_reviewed_bills(session, "2026-07", issue_date=date(2026, 8, 5))
    session.commit()
    session.refresh(jumped)
    assert released.released == 1 and jumped.status is BillStatus.ISSUED
    assert jumped.bill_no == "GD202607440100000002" and jumped.due_date == date(2026, 8, 20)
    assert released.notifications == 0  # no phone, no WeChat: nothing to send, nothing faked
    run = session.scalar(select(CycleRun).where(CycleRun.period == "2026-07"))
    assert (run.bills_issued, run.bills_held) == (2, 0)


def test_a_failing_cycle_leaves_nothing_behind(session: Session) -> None:
    seed_july(session)

    def broken_loader(*_args: object) -> dict:
        raise RuntimeError("meter data system unreachable")

    with pytest.raises(RuntimeError):
        run_cycle(session, "2026-07", issue_date=ISSUE, usage_loader=broken_loader)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(CycleRun)) == 0
    assert session.scalar(select(func.count()).select_from(Bill).where(Bill.period == "2026-07")) == 0
    assert run_cycle(session, "2026-07", issue_date=ISSUE).bills_issued == 1  # and it can run again


def test_a_bad_period_is_refused() -> None:
    from billing_core.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as err:
        run_cycle(None, "2026-13")  # type: ignore[arg-type]
    assert err.value.field == "period"


def test_bills_computed_earlier_are_verified_and_issued_not_computed_again(session: Session) -> None:
    """`powerdesk demo cycle` computes without issuing; the cycle then verifies and issues those bills."""
    from billing_core.bill_types import BillRequest, Usage
    from billing_core.tariffs.compute import compute_bill
    from billing_core.db.models import bill_from_computed

    people = seed_july(session)
    steady = people["steady"]
    stored = compute_bill(BillRequest(account_no=steady.account_no, attributes=steady.tariff_attributes(),
                                      period_start=date(2026, 7, 1), period_end=date(2026, 7, 31),
                                      usage=Usage(total_kwh=Decimal("390"))))
    bill = bill_from_computed(steady.id, "2026-07", stored)
    session.add(bill)
    session.commit()
    result = run_cycle(session, "2026-07", issue_date=ISSUE)
    session.commit()
    session.refresh(bill)
    assert result.verified_existing == 1 and result.bills_computed == 1  # only the jumped customer is new
    assert bill.status is BillStatus.ISSUED and bill.bill_no == "GD202607440100000001"
    assert bill.amount == stored.total and bill.issued_at is not None and bill.due_date == date(2026, 8, 17)
    assert session.scalar(select(func.count()).select_from(BillLine).where(BillLine.bill_id == bill.id)) == len(
        stored.lines)
    assert session.scalar(select(func.count()).select_from(OutboxNotification).where(
        OutboxNotification.bill_id == bill.id)) == 2


def test_bulk_insert_refuses_rows_missing_a_column(session: Session) -> None:
    """Python-side defaults do not run in bulk_insert, so a missing column must fail loudly."""
    from billing_core.db.bulk import bulk_insert

    with pytest.raises(ValueError, match="computed_at"):
        bulk_insert(session, Bill.__table__, [{"customer_id": 1, "period": "2026-07"}])


def test_work_order_numbers_keep_counting_past_9999_in_a_day(session: Session) -> None:
    from billing_core.db.models import WorkOrderKind
    from billing_core.operations.work_orders import WorkOrderNumbers, open_work_orders, work_order_row

    rows = [work_order_row(no, WorkOrderKind.REVIEW, "t", "d") for no in ("WO202608029999", "WO2026080210000")]
    open_work_orders(session, rows)
    assert next(WorkOrderNumbers(session, date(2026, 8, 2))) == "WO2026080210001"


def test_a_customer_blocked_by_readings_is_billed_once_the_review_is_resolved(session: Session) -> None:
    from billing_core.db.models import Meter, Reading

    people = seed_july(session)
    run_cycle(session, "2026-07", issue_date=ISSUE)
    session.commit()
    backwards = people["backwards"]
    review = session.scalar(select(WorkOrder).where(WorkOrder.account_no == backwards.account_no))

    review.status = WorkOrderStatus.RESOLVED  # resolved, but the readings were not corrected
    session.commit()
    first = release_reviewed_bills(session, "2026-07", issue_date=ISSUE)
    session.commit()
    assert (first.rebilled, first.still_blocked) == (0, 1)
    reviews = session.scalars(select(WorkOrder).where(WorkOrder.account_no == backwards.account_no)).all()
    assert len(reviews) == 2  # a new review for the still-wrong readings...
    assert release_reviewed_bills(session, "2026-07", issue_date=ISSUE).still_blocked == 0  # ...and only one
    session.commit()
    assert session.scalar(select(func.count()).select_from(WorkOrder).where(
        WorkOrder.account_no == backwards.account_no)) == 2

    bad = session.scalar(select(Reading).where(Reading.read_date == date(2026, 7, 20),
                                               Reading.meter_id == select(Meter.id).where(
                                                   Meter.customer_id == backwards.id).scalar_subquery()))
    bad.value = Decimal("8200")  # the meter reader's correction: 8000 + 20 days × 10 kWh
    for order in reviews:
        order.status = WorkOrderStatus.CLOSED
    session.commit()
    fixed = release_reviewed_bills(session, "2026-07", issue_date=ISSUE)
    session.commit()
    assert (fixed.rebilled, fixed.released, fixed.still_blocked) == (1, 1, 0)
    bill = session.scalar(select(Bill).where(Bill.customer_id == backwards.id, Bill.period == "2026-07"))
    assert bill.status is BillStatus.ISSUED and bill.total_kwh == Decimal("310")
    run = session.scalar(select(CycleRun).where(CycleRun.period == "2026-07"))
    assert (run.bills_computed, run.bills_issued, run.blocked) == (3, 2, 0)
