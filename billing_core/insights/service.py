"""One customer's insights from the billing database: what the agent's tools call.

`usage_insights` = the month so far, the forecast, the anomaly alerts and (agency / market
customers) the cost outlook; `saving_advice_for` = the advice items priced on the forecast month.
Both read the customer's daily history once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from billing_core.insights.advice import AdviceItem, peak_demand, saving_advice
from billing_core.insights.anomalies import Alert, scan
from billing_core.insights.history import DailyHistory, load_history
from billing_core.insights.market import MarketOutlook, market_outlook
from billing_core.insights.month import MonthForecast, month_forecast, recent_shape
from billing_core.insights.policy import InsightsPolicy, load_policy
from billing_core.periods import period_bounds, period_of

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class UsageInsights:
    forecast: MonthForecast
    alerts: list[Alert]
    market: MarketOutlook | None
    policy_version: str


def _history(session: Session, customer: Customer, today: date, policy: InsightsPolicy) -> tuple[DailyHistory, date]:
    start, _ = period_bounds(period_of(today))
    as_of = max(today - ONE_DAY, start - ONE_DAY)
    return load_history(session, customer.id, as_of - timedelta(days=policy.forecast.history_days), as_of), as_of


def usage_insights(session: Session, customer: Customer, today: date, policy: InsightsPolicy | None = None
                   ) -> UsageInsights:
    policy = policy or load_policy()
    history, as_of = _history(session, customer, today, policy)
    forecast = month_forecast(session, customer, today, policy, history)
    return UsageInsights(forecast, scan(history, as_of, policy.anomalies),
                         market_outlook(session, customer, forecast, policy.market), policy.version)


def saving_advice_for(session: Session, customer: Customer, today: date, policy: InsightsPolicy | None = None
                      ) -> tuple[MonthForecast, list[AdviceItem]]:
    policy = policy or load_policy()
    history, as_of = _history(session, customer, today, policy)
    forecast = month_forecast(session, customer, today, policy, history)
    if forecast.kwh is None:
        return forecast, []
    items = saving_advice(customer.tariff_attributes(), forecast.period, forecast.kwh.point, forecast.mtd_kwh,
                          recent_shape(history, as_of), policy.advice, peak_demand(history.max_demand))
    return forecast, items
