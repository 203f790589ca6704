"""Dunning tiers and late fees (违约金): the pure rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_core.dunning import days_overdue, late_fee, select_tier
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
