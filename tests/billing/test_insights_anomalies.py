"""Anomaly alerts: spikes and zero days against the customer's own same-season pattern, and
backwards readings from the demo's readings, each a Chinese sentence with the figures."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from billing_core.demo.seed import SeedSummary
from billing_core.insights.anomalies import scan, scan_many
from billing_core.insights.history import load_history
from billing_core.insights.policy import load_policy
from tests.billing.insights_fixtures import demo, demo_database  # noqa: F401

POLICY = load_policy().anomalies
FIRST = date(2025, 10, 1)


def _home(last: date, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    days = [FIRST + timedelta(days=i) for i in range((last - FIRST).days + 1)]
    level = np.array([14.0 if d.month in (5, 6, 7, 8, 9, 10) else 8.0 for d in days])
    return (level * rng.uniform(0.8, 1.2, len(days)))[np.newaxis, :]


def test_a_normal_month_raises_nothing_and_a_spike_is_named_with_its_figures() -> None:
    as_of = date(2026, 3, 31)
    matrix = _home(as_of)
    assert scan_many(matrix, FIRST, as_of, POLICY) == [[]]
    spike = (date(2026, 3, 20) - FIRST).days
    matrix[0, spike] = 40.0
    alerts = scan_many(matrix, FIRST, as_of, POLICY)[0]
    assert [a.kind for a in alerts] == ["day_high"]
    alert = alerts[0]
    assert alert.start == date(2026, 3, 20) and alert.value == Decimal("40.00")
    assert "2026-03-20 用电 40.00 千瓦时" in alert.message and f"{alert.typical} 千瓦时" in alert.message


def test_the_first_summer_weeks_are_compared_with_last_summer_not_with_spring() -> None:
    """May doubles April's use in every Guangzhou home: no alert, because last May was the same."""
    as_of = date(2026, 5, 20)
    assert scan_many(_home(as_of), FIRST, as_of, POLICY) == [[]]


def test_a_high_week_and_zero_days_on_an_occupied_account() -> None:
    as_of = date(2026, 3, 31)
    matrix = _home(as_of)
    last = (as_of - FIRST).days
    matrix[0, last - 6 : last + 1] *= 1.8
    matrix[0, last - 20 : last - 15] = 0.0
    kinds = {a.kind: a for a in scan_many(matrix, FIRST, as_of, POLICY)[0]}
    assert set(kinds) == {"week_high", "zero_days"}
    assert kinds["week_high"].start == date(2026, 3, 25) and kinds["week_high"].end == as_of
    assert kinds["zero_days"].value == 5 and "连续 5 天用电为 0" in kinds["zero_days"].message


def test_an_empty_home_is_not_an_occupied_account_with_zero_days() -> None:
    as_of = date(2026, 3, 31)
    matrix = np.zeros((1, (as_of - FIRST).days + 1))
    assert scan_many(matrix, FIRST, as_of, POLICY) == [[]]


def test_the_demo_backwards_reading_is_an_alert(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    customer = session.scalar(select(Customer).where(Customer.account_no == summary.backwards_accounts[0]))
    history = load_history(session, customer.id, date(2026, 6, 1), date(2026, 10, 31))
    every = scan(history, date(2026, 10, 31), POLICY)
    alerts = [a for a in every if a.kind == "reading_backwards"]
    assert len(alerts) == 1
    # The glitch is kept out of the energy: the day after it is measured from the last good reading,
    # not from the low one (which would look like a spike).
    assert [a for a in every if a.kind == "day_high"] == []
    alert = alerts[0]
    assert alert.value < alert.typical and str(alert.value) in alert.message and "示数" in alert.message
