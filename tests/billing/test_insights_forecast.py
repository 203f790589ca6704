"""Month so far and forecast: the bill so far is `compute_bill` of the partial period, the forecast
is priced by `compute_bill`, and the method behaves on series whose answer is known."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.bill_types import BillRequest, CustomerCategory
from billing_core.consumption import load_consumption
from billing_core.db.models import Customer
from billing_core.demo.seed import SeedSummary
from billing_core.errors import BillingError
from billing_core.insights.bills import needs, shape_from_arrays, usage_of, what_if_bill
from billing_core.insights.forecast import PRIOR_LAST_MONTH, PRIOR_SEASONAL, forecast_month, naive_same_as_last_month
from billing_core.insights.history import load_history
from billing_core.insights.month import month_forecast
from billing_core.insights.policy import load_policy
from billing_core.periods import period_bounds
from billing_core.tariffs.compute import compute_bill
from tests.billing.insights_fixtures import demo, demo_database  # noqa: F401

POLICY = load_policy()


def _customer(session: Session, category: CustomerCategory, **where: object) -> Customer:
    query = select(Customer).where(Customer.category == category).order_by(Customer.id)
    for name, value in where.items():
        query = query.where(getattr(Customer, name) == value)
    return session.scalars(query).first()


def test_month_so_far_is_compute_bill_of_the_partial_period(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    backwards = set(summary.backwards_accounts)
    for category in (CustomerCategory.RESIDENTIAL, CustomerCategory.CI_TWO_PART, CustomerCategory.CI_SINGLE):
        customer = next(c for c in session.scalars(select(Customer).where(Customer.category == category))
                        if c.account_no not in backwards)
        result = month_forecast(session, customer, date(2026, 10, 16))
        assert result.last_read_day == date(2026, 10, 15) and result.days_elapsed == 15
        usage = load_consumption(session, customer.id, date(2026, 10, 1), date(2026, 10, 15)).to_usage()
        expected = compute_bill(BillRequest(account_no=customer.account_no, attributes=customer.tariff_attributes(),
                                            period_start=date(2026, 10, 1), period_end=date(2026, 10, 15), usage=usage))
        assert result.mtd_bill == expected
        assert result.kwh is not None and result.bill is not None
        assert result.kwh.low <= result.kwh.point <= result.kwh.high
        assert result.kwh.low >= result.mtd_kwh.to_integral_value() - 1
        assert result.bill_low.total <= result.bill.total <= result.bill_high.total
        # The forecast bill is the billing core's bill of the forecast kWh, not arithmetic on prices.
        assert result.bill.total_kwh == result.kwh.point
        assert result.bill.lines and all(line.tariff_version for line in result.bill.lines)
        assert f"{result.bill.total} 元" in result.summary_cn()


def test_forecast_of_the_demo_is_close_to_the_month_actually_read(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    customer = _customer(session, CustomerCategory.RESIDENTIAL, household_type="ordinary")
    result = month_forecast(session, customer, date(2026, 10, 11))
    actual = load_consumption(session, customer.id, date(2026, 10, 1), date(2026, 10, 31)).active_kwh
    assert abs(result.kwh.point - actual) / actual < Decimal("0.15")
    assert "去年同月" in result.method  # October 2025 is in the demo: the seasonal baseline is used


def test_a_backwards_reading_gives_no_bill_so_far_but_says_why(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    customer = session.scalar(select(Customer).where(Customer.account_no == summary.backwards_accounts[0]))
    result = month_forecast(session, customer, date(2026, 10, 31))
    assert result.mtd_bill is None and "示数" in (result.mtd_note or "")
    assert "复核" in result.summary_cn()


def _series(first: date, last: date, rate_of) -> np.ndarray:  # type: ignore[no-untyped-def]
    days = (last - first).days + 1
    return np.array([[rate_of(first + timedelta(days=i)) for i in range(days)]], dtype=float)


def test_flat_series_forecasts_its_rate_and_the_interval_narrows_with_days_read() -> None:
    first = date(2025, 9, 1)
    rng = np.random.default_rng(1)
    matrix = _series(first, date(2026, 10, 31), lambda d: 10.0) * rng.uniform(0.9, 1.1, (1, 426))
    widths = []
    for as_of in (date(2026, 9, 30), date(2026, 10, 10), date(2026, 10, 25)):
        f = forecast_month(matrix, first, as_of, "2026-10", POLICY.forecast)
        assert abs(f.point[0] - 310) < 20
        assert f.low[0] <= f.point[0] <= f.high[0]
        widths.append(f.high[0] - f.low[0])
    assert widths[0] > widths[1] > widths[2]


def test_seasonal_baseline_beats_last_month_before_a_season_change() -> None:
    """Nothing read yet: a home whose use doubles every July forecasts July from last July, not June."""
    first = date(2025, 5, 1)
    matrix = _series(first, date(2026, 7, 31), lambda d: 20.0 if d.month == 7 else 10.0)
    f = forecast_month(matrix, first, date(2026, 6, 30), "2026-07", POLICY.forecast)
    assert f.prior_kind[0] == PRIOR_SEASONAL and abs(f.point[0] - 620) < 1
    naive, low, high = naive_same_as_last_month(matrix, first, "2026-07", POLICY.forecast)
    assert naive[0] == pytest.approx(300)
    short = matrix[:, 365:]  # without last July only last month is known
    f = forecast_month(short, first + timedelta(days=365), date(2026, 6, 30), "2026-07", POLICY.forecast)
    assert f.prior_kind[0] == PRIOR_LAST_MONTH and abs(f.point[0] - 310) < 1


def test_weekday_pattern_is_used_for_the_days_to_come() -> None:
    """A plant that idles on Sundays: a month with five Sundays left forecasts less than one with four."""
    first = date(2026, 6, 1)
    matrix = _series(first, date(2026, 8, 31), lambda d: 2.0 if d.weekday() == 6 else 10.0)
    f = forecast_month(matrix, first, date(2026, 7, 31), "2026-08", POLICY.forecast)
    sundays = sum(1 for i in range(31) if date(2026, 8, 1 + i).weekday() == 6)
    assert abs(f.point[0] - (sundays * 2 + (31 - sundays) * 10)) < 8


def test_what_if_usage_keeps_the_customer_proportions_and_is_priced_by_compute_bill(
        demo: tuple[Session, SeedSummary]) -> None:
    session, _ = demo
    customer = _customer(session, CustomerCategory.CI_TWO_PART)
    history = load_history(session, customer.id, date(2026, 9, 1), date(2026, 9, 30))
    shape = shape_from_arrays(history.kwh, history.tou, history.reactive, history.max_demand)
    attributes = customer.tariff_attributes()
    usage = usage_of(Decimal("12345"), shape, **needs(attributes))
    assert usage.tou is not None and usage.tou.total() == Decimal("12345")
    assert usage.reactive_kvarh is not None
    bill = what_if_bill(attributes, date(2026, 11, 1), date(2026, 11, 30), usage)
    assert bill == compute_bill(BillRequest(attributes=attributes, period_start=date(2026, 11, 1),
                                            period_end=date(2026, 11, 30), usage=usage))


def test_malformed_policy_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    text = Path("billing_core/insights/policy.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "policy.yaml"
    bad.write_text(text.replace('interval_level: "0.80"', 'interval_level: "1.5"'), encoding="utf-8")
    with pytest.raises(BillingError) as caught:
        load_policy(bad)
    assert str(bad) in str(caught.value) and caught.value.field == "forecast.interval_level"


def test_daily_history_adds_up_to_every_stored_bill(demo: tuple[Session, SeedSummary]) -> None:
    """The insights read the same energy the bills were computed on (meter replacements, multipliers
    included); only a reading gap across a month boundary is split differently (spread over its days
    here, on the next reading in the bill) and is marked estimated."""
    from billing_core.db.models import Bill
    from billing_core.insights.history import load_histories

    session, _ = demo
    ids = list(session.scalars(select(Customer.id)))
    histories = load_histories(session, ids, date(2025, 10, 1), date(2026, 10, 31))
    checked = 0
    for customer_id, period, kwh in session.execute(select(Bill.customer_id, Bill.period, Bill.total_kwh)):
        history = histories[customer_id]
        start, end = period_bounds(period)
        lo, hi = history.index(start), history.index(end)
        total = float(np.nansum(history.kwh[lo : hi + 1]))
        gap_at_edge = history.estimated[lo] or (hi + 1 < len(history.kwh) and history.estimated[hi + 1])
        if not gap_at_edge:
            assert total == pytest.approx(float(kwh), abs=0.01), (customer_id, period)
            checked += 1
    assert checked >= 400  # 40 customers × 12 billed months, less the few gaps at month ends


def test_a_month_whose_readings_have_not_arrived_says_so(demo: tuple[Session, SeedSummary]) -> None:
    """The demo's readings end on 2026-10-31: on 15 November nothing of the month is read, so the
    forecast must not claim days read, nor advice claim 0 kWh used."""
    from billing_core.insights.advice import tier_headroom
    from billing_core.insights.month import recent_shape

    session, _ = demo
    home = _customer(session, CustomerCategory.RESIDENTIAL, residential_tou=False)
    forecast = month_forecast(session, home, date(2026, 11, 15))
    assert forecast.last_read_day is None and forecast.days_elapsed == 0 and forecast.mtd_kwh is None
    assert "已抄" not in forecast.method and "2026-11 月的抄表读数尚未收到" in forecast.summary_cn()
    history = load_history(session, home.id, date(2026, 8, 1), date(2026, 11, 14))
    item = tier_headroom(home.tariff_attributes(), "2026-11", forecast.mtd_kwh, forecast.kwh.point,
                         recent_shape(history, date(2026, 11, 14)))
    assert item is not None and "本月读数尚未收到" in item.message and "本月已用" not in item.message
