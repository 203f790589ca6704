"""Outbox rows for insight notices: usage-anomaly alerts, and forecast-above-usual (opt-in).

The same outbox (`outbox_notifications`) and row shape as the bill-issued and dunning messages
(`operations.notifications.insight_rows`), so the notices worker sends them like any other, and
only to customers who opted in (`notification_opt_ins`); `dedupe_key`
makes a re-run queue nothing twice (an alert per customer, kind and first day; a forecast notice
per customer and month). Every figure in a body is the alert's or the billing core's bill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from billing_core.db.operations_models import NotificationOptIn
from billing_core.insights.anomalies import Alert, scan
from billing_core.insights.history import load_histories
from billing_core.insights.market import usual_amount
from billing_core.insights.month import MonthForecast, month_forecast
from billing_core.insights.policy import InsightsPolicy, load_policy
from billing_core.operations.notifications import insight_rows, period_label, recipients
from billing_core.operations.outbox import queue_new
from billing_core.operations.policy import load_policy as load_operations_policy
from billing_core.periods import period_bounds, period_of

ONE_DAY = timedelta(days=1)


def alert_rows(*, account_no: str, name: str, alert: Alert, channels: Sequence[str], reachable: dict[str, str]) -> list[dict[str, Any]]:
    """One usage-anomaly alert as outbox rows, one per channel the customer can be reached on."""
    body = f"尊敬的{name}客户：您户号{account_no}的用电提醒：{alert.message}如有疑问请致电95598。"
    payload = {"kind": alert.kind, "start": alert.start.isoformat(), "end": alert.end.isoformat(),
               "value": str(alert.value), "typical": None if alert.typical is None else str(alert.typical)}
    return insight_rows(kind="anomaly_alert", account_no=account_no, ref=f"{alert.kind}:{alert.start.isoformat()}",
                        body=body, payload=payload, channels=list(channels), reachable=reachable)


def forecast_rows(*, account_no: str, name: str, forecast: MonthForecast, usual: Decimal, channels: Sequence[str],
                  reachable: dict[str, str]) -> list[dict[str, Any]]:
    """The forecast-above-usual notice of a month (the forecast bill and interval from `compute_bill`)."""
    assert forecast.bill is not None and forecast.bill_low is not None and forecast.bill_high is not None
    body = (f"尊敬的{name}客户：您户号{account_no}{period_label(forecast.period)}截至{forecast.last_read_day}"
            f"已用电{forecast.mtd_kwh}千瓦时，预计全月电费约{forecast.bill.total}元"
            f"（{forecast.bill_low.total}—{forecast.bill_high.total}元），高于您近期账单的通常水平{usual}元，请留意用电。")
    payload = {"period": forecast.period, "forecast": str(forecast.bill.total), "low": str(forecast.bill_low.total),
               "high": str(forecast.bill_high.total), "usual": str(usual)}
    return insight_rows(kind="forecast_above_usual", account_no=account_no, ref=forecast.period,
                        body=body, payload=payload, channels=list(channels), reachable=reachable)


def queue_insight_notices(
    session: Session, today: date, *, customer_ids: Sequence[int] | None = None,
    forecast_opt_in: Callable[[Customer], bool] | None = None,
    policy: InsightsPolicy | None = None, channels: Sequence[str] | None = None,
) -> int:
    """Queue the alerts of the `report_days` up to yesterday and the opted-in forecast notices; rows added.

    A forecast notice is computed only for a customer who opted in to it (`notification_opt_ins`,
    or the caller's `forecast_opt_in`); alerts are queued for all, and the notices worker sends
    them only to customers who opted in to `anomaly_alert`.
    """
    if forecast_opt_in is None:
        opted = set(session.scalars(select(NotificationOptIn.account_no)
                                    .where(NotificationOptIn.kind == "forecast_above_usual")))
        forecast_opt_in = lambda customer: customer.account_no in opted  # noqa: E731
    policy = policy or load_policy()
    channels = list(channels or load_operations_policy().issue.notification_channels)
    ids = list(customer_ids) if customer_ids is not None else list(session.scalars(select(Customer.id).order_by(Customer.id)))
    as_of = today - ONE_DAY
    first = as_of - timedelta(days=policy.forecast.history_days)
    since = as_of - timedelta(days=policy.anomalies.report_days - 1)
    start, _ = period_bounds(period_of(today))
    added = 0
    for offset in range(0, len(ids), 2000):
        chunk = ids[offset : offset + 2000]
        histories = load_histories(session, chunk, first, as_of)
        rows: list[dict[str, Any]] = []
        for customer in session.scalars(select(Customer).where(Customer.id.in_(chunk)).order_by(Customer.id)):
            reachable = recipients(customer.phone, customer.wechat_openid)
            if not reachable:
                continue
            history = histories[customer.id]
            for alert in scan(history, as_of, policy.anomalies):
                if alert.end >= since:
                    rows += alert_rows(account_no=customer.account_no, name=customer.name, alert=alert,
                                       channels=channels, reachable=reachable)
            if not forecast_opt_in(customer):
                continue
            forecast = month_forecast(session, customer, today, policy, history)
            usual, _ = usual_amount(session, customer.id, forecast.period, policy.market.usual_months)
            if (forecast.bill is not None and forecast.bill_low is not None and usual
                    and forecast.days_elapsed >= policy.notices.min_days_read and as_of >= start
                    and forecast.bill.total > usual * (1 + policy.notices.forecast_above_usual)):
                rows += forecast_rows(account_no=customer.account_no, name=customer.name, forecast=forecast,
                                      usual=usual, channels=channels, reachable=reachable)
        added += queue_new(session, {row["dedupe_key"]: row for row in rows}.values())  # once per key
    return added
