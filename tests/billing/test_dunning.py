"""Dunning tiers and late fees (违约金): the pure rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_core.operations.dunning import days_overdue, late_fee, select_tier
from billing_core.errors import BillingError


def test_the_due_date_itself_is_not_overdue() -> None:
    assert days_overdue(date(2026, 8, 15), date(2026, 8, 15)) == 0
    assert days_overdue(date(2026, 8, 15), date(2026, 8, 16)) == 1
    assert days_overdue(date(2026, 8, 15), date(2026, 8, 1)) == 0


@pytest.mark.parametrize(
    ("days", "amount", "tier"),
    [
        (0, "500", None),
        (1, "500", "reminder"),
        (14, "500", "reminder"),
        (15, "500", "second_reminder"),
        (30, "99.99", "second_reminder"),  # too small for an agent's call
        (30, "100.00", "agent_call"),
        (90, "5000", "agent_call"),
    ],
)
def test_tier_by_days_and_amount(days: int, amount: str, tier: str | None) -> None:
    chosen = select_tier(days, Decimal(amount))
    assert (chosen.code if chosen else None) == tier


def test_residential_late_fee_one_per_mille_from_the_day_after_due() -> None:
    fee = late_fee(Decimal("242.55"), date(2026, 8, 15), date(2026, 9, 14), "residential")
    assert fee.days == 30
    assert fee.amount == Decimal("7.28")  # 242.55 × 0.001 × 30 = 7.2765 → 7.28 half-up


def test_late_fee_is_zero_on_the_due_date() -> None:
    fee = late_fee(Decimal("242.55"), date(2026, 8, 15), date(2026, 8, 15), "residential")
    assert fee.amount == Decimal("0.00") and fee.days == 0
    assert fee.explanation() == "未逾期，不计违约金。"


def test_other_users_pay_two_per_mille_then_three_across_years() -> None:
    # Due 2026-12-20: 11 days in 2026 (21st..31st) at 0.002, 10 days in 2027 at 0.003.
    fee = late_fee(Decimal("10000.00"), date(2026, 12, 20), date(2027, 1, 10), "ci_single")
    assert (fee.days_current_year, fee.days_across_years) == (11, 10)
    assert fee.amount == Decimal("520.00")  # 10000 × (0.002 × 11 + 0.003 × 10)
    assert "跨年度" in fee.explanation()


def test_small_late_fee_is_raised_to_the_minimum() -> None:
    fee = late_fee(Decimal("30.00"), date(2026, 8, 15), date(2026, 8, 17), "residential")
    assert fee.amount == Decimal("1.00") and fee.minimum_applied  # 0.06 < 1.00


def test_unknown_category_and_negative_principal_are_refused() -> None:
    with pytest.raises(BillingError, match="category"):
        late_fee(Decimal("1"), date(2026, 1, 1), date(2026, 2, 1), "industrial")
    with pytest.raises(BillingError, match="principal"):
        late_fee(Decimal("-1"), date(2026, 1, 1), date(2026, 2, 1), "residential")


# --- a dunning pass over the database (SQLite and PostgreSQL) ------------------------------------

from datetime import UTC, datetime  # noqa: E402

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from billing_core.bill_types import CustomerCategory  # noqa: E402
from billing_core.operations.dunning_store import run_dunning  # noqa: E402
from billing_core.db.models import BillStatus, Payment, PaymentChannel, WorkOrder, WorkOrderKind  # noqa: E402
from billing_core.db.operations_models import DunningAction, LateFeeAccrual, OutboxNotification  # noqa: E402
from tests.billing.ops_factories import add_bill, add_customer  # noqa: E402

DUE = date(2026, 8, 17)


def seed_overdue(session: Session) -> dict[str, int]:
    home = add_customer(session, 1, openid="wx-1")
    shop = add_customer(session, 2, category=CustomerCategory.CI_SINGLE, phone="13900000000")
    part = add_customer(session, 3)
    settled = add_customer(session, 4)
    bills = {
        "home": add_bill(session, home, "2026-07", "400", "242.55", BillStatus.ISSUED, "GDH", DUE),
        "shop": add_bill(session, shop, "2026-07", "9000", "6000.00", BillStatus.ISSUED, "GDS", DUE),
        "part": add_bill(session, part, "2026-07", "300", "180.00", BillStatus.PARTIALLY_PAID, "GDP", DUE),
        "settled": add_bill(session, settled, "2026-07", "300", "180.00", BillStatus.PAID, "GDX", DUE),
    }
    session.add(Payment(bill_id=bills["part"].id, customer_id=part.id, amount=Decimal("100.00"),
                        channel=PaymentChannel.COUNTER, paid_at=datetime(2026, 8, 10, tzinfo=UTC),
                        idempotency_key="c-1"))
    session.commit()
    return {name: bill.id for name, bill in bills.items()}


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_nothing_happens_on_the_due_date(session: Session) -> None:
    seed_overdue(session)
    assert run_dunning(session, DUE).overdue_bills == 0
    session.commit()
    assert count(session, DunningAction) == 0


def test_first_reminders_with_late_fees(session: Session) -> None:
    ids = seed_overdue(session)
    result = run_dunning(session, date(2026, 8, 20))  # 3 days overdue
    session.commit()
    assert result.overdue_bills == 3 and result.actions == {"reminder": 3}
    fees = {row.bill_id: row for row in session.scalars(select(LateFeeAccrual))}
    assert fees[ids["shop"]].amount == Decimal("36.00")  # 6000 × 0.002 × 3
    assert fees[ids["home"]].amount == Decimal("1.00")  # 242.55 × 0.001 × 3 = 0.73 → minimum 1 元
    assert fees[ids["part"]].principal == Decimal("80.00")  # only what is still owed
    assert ids["settled"] not in fees
    channels = sorted((m.bill_id, m.channel.value) for m in session.scalars(select(OutboxNotification)))
    assert channels == sorted([(ids["home"], "sms"), (ids["home"], "wechat_template"), (ids["shop"], "sms"),
                               (ids["part"], "sms")])
    body = session.scalar(select(OutboxNotification.body).where(OutboxNotification.bill_id == ids["shop"]))
    assert "逾期3天" in body and "6000.00元" in body and "36.00元" in body


def test_the_same_day_twice_changes_nothing_and_tiers_escalate(session: Session) -> None:
    ids = seed_overdue(session)
    run_dunning(session, date(2026, 8, 20))
    session.commit()
    before = (count(session, DunningAction), count(session, OutboxNotification), count(session, LateFeeAccrual))
    assert run_dunning(session, date(2026, 8, 20)).actions == {}
    session.commit()
    assert (count(session, DunningAction), count(session, OutboxNotification), count(session, LateFeeAccrual)) == before
    late = run_dunning(session, date(2026, 9, 20))  # 34 days overdue
    session.commit()
    # The shop (6000 元) and the household (242.55 元) reach the call tier; the part-payer owes 80 元 only.
    assert late.actions == {"agent_call": 2, "second_reminder": 1}
    calls = session.scalars(select(WorkOrder).where(WorkOrder.kind == WorkOrderKind.DUNNING_CALL)).all()
    assert sorted(c.bill_id for c in calls) == sorted([ids["home"], ids["shop"]])
    assert all(c.priority.value == "high" for c in calls)
