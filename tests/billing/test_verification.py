"""Verification rules (电费核查): each rule fires on the case it exists for, and only then."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from billing_core.errors import BillingError
from billing_core.operations.policy import DEFAULT_POLICY_PATH, load_policy, parse_policy
from billing_core.cycle.verification import RegisterReading, VerificationContext, verify_bill
from tests.billing.ops_factories import bill, line, residential_july


def rules(ctx: VerificationContext, policy=None) -> list[str]:
    return [hit.rule for hit in verify_bill(ctx, policy)]


def test_a_clean_bill_passes_every_rule() -> None:
    ctx = VerificationContext(
        bill=residential_july(),
        category="residential",
        last_month_kwh=Decimal("380"),
        same_month_last_year_kwh=Decimal("420"),
        readings=[RegisterReading("active_total", Decimal("1000"), Decimal("1400"), Decimal("1"), Decimal("1"))],
        other_periods=[(date(2026, 6, 1), date(2026, 6, 30))],
    )
    assert residential_july().total == Decimal("242.55")
    assert verify_bill(ctx) == []


@pytest.mark.parametrize(
    ("last_month", "expected"),
    [
        ("300", ["consumption_jump_last_month"]),  # 400/300 = +33.3 %
        ("308", []),  # 400/308 = +29.9 % -> within ±30 %
        ("600", ["consumption_drop_last_month"]),  # −33 %
        ("571", []),  # −29.9 %
        ("0", ["consumption_jump_last_month"]),  # from nothing to 400 kWh
    ],
)
def test_consumption_change_against_last_month(last_month: str, expected: list[str]) -> None:
    ctx = VerificationContext(bill=residential_july(), category="residential", last_month_kwh=Decimal(last_month))
    assert rules(ctx) == expected


def test_consumption_change_against_same_month_last_year() -> None:
    ctx = VerificationContext(
        bill=residential_july(), category="residential", same_month_last_year_kwh=Decimal("200")
    )
    hits = verify_bill(ctx)
    assert [h.rule for h in hits] == ["consumption_jump_last_year"]
    assert "去年同期" in hits[0].message and "100.0%" in hits[0].message


def test_small_consumption_changes_are_not_flagged() -> None:
    small = bill([line("tier_1", "12", "0.58886875")])
    ctx = VerificationContext(bill=small, category="residential", last_month_kwh=Decimal("3"))
    assert rules(ctx) == []


def test_threshold_comes_from_the_policy_file(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["verification"]["consumption_change"]["vs_last_month"] = "0.50"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    ctx = VerificationContext(bill=residential_july(), category="residential", last_month_kwh=Decimal("300"))
    assert rules(ctx) == ["consumption_jump_last_month"]
    assert rules(ctx, load_policy(path)) == []


def test_a_malformed_policy_names_the_key() -> None:
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    data["verification"]["consumption_change"]["vs_last_month"] = "-1"
    with pytest.raises(BillingError) as err:
        parse_policy(data)
    assert err.value.field == "verification.consumption_change.vs_last_month"


def test_zero_consumption_with_a_positive_charge() -> None:
    charged = bill([line("tier_1", "0", "0.58886875"), line("service_fee", "1", "5.00", unit="元")], kwh="0")
    assert rules(VerificationContext(bill=charged, category="residential")) == ["zero_consumption_positive_charge"]


def test_zero_consumption_with_only_a_basic_charge_is_fine() -> None:
    basic = bill([line("basic_capacity", "400", "22.6", unit="kVA·月"), line("energy_flat", "0", "0.6")], kwh="0")
    assert rules(VerificationContext(bill=basic, category="ci_two_part")) == []


def test_line_amount_not_quantity_times_price() -> None:
    wrong = bill([line("tier_1", "260", "0.58886875", amount="153.12"), line("tier_2", "140", "0.63886875")])
    hits = verify_bill(VerificationContext(bill=wrong, category="residential"))
    assert [h.rule for h in hits] == ["amount_mismatch"]
    assert hits[0].details == {"line": "tier_1", "amount": "153.12", "expected": "153.11"}


def test_total_not_the_sum_of_lines() -> None:
    wrong = bill([line("tier_1", "260", "0.58886875"), line("tier_2", "140", "0.63886875")], total="242.56")
    hits = verify_bill(VerificationContext(bill=wrong, category="residential"))
    assert [h.details["line"] for h in hits] == ["total"]


def test_price_outside_the_category_band() -> None:
    typo = bill([line("energy", "1000", "5.80")])  # 0.58 typed with the decimal point moved
    assert rules(VerificationContext(bill=typo, category="residential")) == ["price_outside_tariff"]
    allocation = bill([line("energy", "1000", "0.45"), line("market_allocation", "1000", "-0.01")])
    assert rules(VerificationContext(bill=allocation, category="ci_single")) == []


def test_price_different_from_the_tariff_price() -> None:
    ctx = VerificationContext(
        bill=residential_july(),
        category="residential",
        tariff_prices={"tier_1": Decimal("0.58886875"), "tier_2": Decimal("0.63886870")},
    )
    hits = verify_bill(ctx)
    assert [(h.rule, h.details["line"]) for h in hits] == [("price_outside_tariff", "tier_2")]


def test_reading_decreased_without_meter_change() -> None:
    backwards = RegisterReading("active_total", Decimal("1400"), Decimal("1000"))
    ctx = VerificationContext(bill=residential_july(), category="residential", readings=[backwards])
    assert rules(ctx) == ["reading_decreased"]
    replaced = RegisterReading("active_total", Decimal("1400"), Decimal("1000"), meter_replaced=True)
    ctx = VerificationContext(bill=residential_july(), category="residential", readings=[replaced])
    assert rules(ctx) == []


def test_multiplier_changed() -> None:
    changed = RegisterReading("active_total", Decimal("1"), Decimal("2"), Decimal("80"), Decimal("40"))
    ctx = VerificationContext(bill=residential_july(), category="residential", readings=[changed])
    hits = verify_bill(ctx)
    assert [h.rule for h in hits] == ["multiplier_changed"]
    assert "40" in hits[0].message and "80" in hits[0].message


def test_missing_reading_and_missing_days() -> None:
    ctx = VerificationContext(
        bill=residential_july(),
        category="residential",
        readings=[RegisterReading("peak", None, Decimal("10"))],
        missing_days=[date(2026, 7, 9), date(2026, 7, 3)],
    )
    hits = verify_bill(ctx)
    assert [h.rule for h in hits] == ["missing_reading", "missing_reading"]
    assert hits[1].details == {"missing_days": "2", "first": "2026-07-03"}


@pytest.mark.parametrize(
    ("other", "overlaps"),
    [
        ((date(2026, 6, 1), date(2026, 6, 30)), False),
        ((date(2026, 6, 15), date(2026, 7, 1)), True),  # one shared day is enough
        ((date(2026, 7, 31), date(2026, 8, 30)), True),
        ((date(2026, 8, 1), date(2026, 8, 31)), False),
    ],
)
def test_overlapping_periods(other: tuple[date, date], overlaps: bool) -> None:
    ctx = VerificationContext(bill=residential_july(), category="residential", other_periods=[other])
    assert rules(ctx) == (["overlapping_period"] if overlaps else [])
