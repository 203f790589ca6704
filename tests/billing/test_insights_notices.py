"""Insight notices go to the outbox once, through the outbox's `insight_rows` hook: the demo's
backwards reading, and a forecast for a customer whose consent is stored in `notification_opt_ins`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from billing_core.db.operations_models import NotificationOptIn, OutboxNotification
from billing_core.demo.seed import SeedSummary
from billing_core.insights.policy import load_policy
from tests.billing.insights_fixtures import demo, demo_database  # noqa: F401
from billing_core.insights.month import month_forecast
from billing_core.insights.notices import queue_insight_notices


def test_alerts_and_opted_in_forecasts_are_queued_once(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    glitch = session.scalar(select(Customer).where(Customer.account_no == summary.backwards_accounts[0]))
    added = queue_insight_notices(session, date(2026, 11, 1), customer_ids=[glitch.id])
    rows = session.scalars(select(OutboxNotification).where(OutboxNotification.account_no == glitch.account_no,
                                                            OutboxNotification.kind == "anomaly_alert")).all()
    assert added == len(rows) >= 1 and all("示数" in r.body and glitch.name in r.body for r in rows)
    assert queue_insight_notices(session, date(2026, 11, 1), customer_ids=[glitch.id]) == 0  # dedupe

    home = session.scalars(select(Customer).where(Customer.account_no.not_in(summary.backwards_accounts),
                                                  Customer.phone.is_not(None)).order_by(Customer.id)).first()
    low_bar = load_policy().model_copy(update={"notices": load_policy().notices.model_copy(
        update={"forecast_above_usual": Decimal("0.0001")})})
    kwargs = {"customer_ids": [home.id], "policy": low_bar}
    july = date(2026, 7, 20)  # summer use against the median of January … June bills: well above
    assert queue_insight_notices(session, july, **kwargs) == 0  # nobody opted in
    session.add(NotificationOptIn(account_no=home.account_no, kind="forecast_above_usual"))  # the stored consent
    session.flush()
    queued = queue_insight_notices(session, july, **kwargs)
    notice = session.scalars(select(OutboxNotification).where(OutboxNotification.kind == "forecast_above_usual")).all()
    assert queued == len(notice) >= 1 and {row.channel.value for row in notice} >= {"sms"}
    forecast = month_forecast(session, home, july)
    for row in notice:
        assert row.payload["forecast"] == str(forecast.bill.total) and f"约{forecast.bill.total}元" in row.body
        assert row.payload["usual"] in row.body and row.dedupe_key.startswith(f"forecast_above_usual:{home.account_no}:2026-07")
    assert queue_insight_notices(session, july, forecast_opt_in=lambda c: True, **kwargs) == 0
