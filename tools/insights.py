"""`forecast_bill`, `usage_insights`, `saving_advice`: the verified customer's month so far, its
forecast, anomaly alerts, agency/market cost outlook and energy-saving advice.

Every figure comes from `billing_core.insights` (bills by `compute_bill`); these tools only read
the verified principal's own customer row and turn the results into typed, quotable output.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from billing_core.bill_types import ComputedBill
from billing_core.db.models import Customer
from billing_core.insights.month import MonthForecast, month_forecast
from billing_core.insights.policy import load_policy
from billing_core.insights.service import saving_advice_for
from billing_core.insights.service import usage_insights as insights_of
from billing_core.number_text import quantity_text
from tools.account_view import CustomerView
from tools.context import ToolContext
from tools.results import NotFound, ToolResult


class NoArguments(BaseModel):
    """These tools act on the verified customer's current month: nothing to choose."""

    model_config = ConfigDict(extra="forbid")


ForecastBillInput = UsageInsightsInput = SavingAdviceInput = NoArguments


class BillLineOut(BaseModel):
    code: str
    name: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    tariff_version: str
    source: str


class ForecastOut(BaseModel):
    period: str
    last_read_day: date | None
    days_elapsed: int
    days_in_month: int
    kwh_so_far: Decimal | None
    amount_so_far: Decimal | None
    so_far_note: str | None
    forecast_kwh: Decimal | None
    forecast_kwh_low: Decimal | None
    forecast_kwh_high: Decimal | None
    forecast_amount: Decimal | None
    forecast_amount_low: Decimal | None
    forecast_amount_high: Decimal | None
    interval_percent: int
    method: str
    forecast_lines: list[BillLineOut]
    notes: list[str]
    text: str


class ForecastFound(ToolResult):
    status: str = "ok"
    account_no: str
    forecast: ForecastOut


class AlertOut(BaseModel):
    kind: str
    start: date
    end: date
    value: Decimal
    typical: Decimal | None
    text: str


class MarketOut(BaseModel):
    purchase_mode: str
    forecast_amount: Decimal
    usual_amount: Decimal | None
    usual_months: int
    deviation_percent: Decimal | None
    threshold_percent: Decimal
    warning: bool
    energy_prices: list[tuple[str, Decimal, str]]  # (period, 元/kWh, tariff version)
    text: str


class UsageInsightsFound(ToolResult):
    status: str = "ok"
    account_no: str
    forecast: ForecastOut
    alerts: list[AlertOut]
    alert_days: int
    market: MarketOut | None
    policy_version: str


class TariffLineOut(BillLineOut):
    bill: str


class AdviceOut(BaseModel):
    code: str
    title: str
    text: str
    saving: Decimal | None
    base_amount: Decimal | None
    what_if_amount: Decimal | None
    kwh: Decimal | None
    lines: list[TariffLineOut]


class AdviceFound(ToolResult):
    status: str = "ok"
    account_no: str
    period: str
    forecast_kwh: Decimal
    forecast_amount: Decimal | None
    items: list[AdviceOut]


def _lines(bill: ComputedBill | None) -> list[BillLineOut]:
    if bill is None:
        return []
    return [BillLineOut(code=l.code, name=l.name, quantity=l.quantity, unit=l.unit, unit_price=l.unit_price,
                        amount=l.amount, tariff_version=l.tariff_version, source=l.source) for l in bill.lines]


def _total(bill: ComputedBill | None) -> Decimal | None:
    return bill.total if bill is not None else None


def forecast_out(f: MonthForecast) -> ForecastOut:
    return ForecastOut(
        period=f.period, last_read_day=f.last_read_day, days_elapsed=f.days_elapsed, days_in_month=f.days_in_month,
        kwh_so_far=f.mtd_kwh, amount_so_far=_total(f.mtd_bill), so_far_note=f.mtd_note,
        forecast_kwh=f.kwh.point if f.kwh else None, forecast_kwh_low=f.kwh.low if f.kwh else None,
        forecast_kwh_high=f.kwh.high if f.kwh else None, forecast_amount=_total(f.bill),
        forecast_amount_low=_total(f.bill_low), forecast_amount_high=_total(f.bill_high),
        interval_percent=int(f.level * 100), method=f.method, forecast_lines=_lines(f.bill), notes=list(f.notes),
        text=f.summary_cn(),
    )


def _customer(session: Session, view: CustomerView) -> Customer:
    customer = session.get(Customer, view.id)
    if customer is None:  # the principal's row vanished mid-call (closed account)
        raise LookupError(f"customer {view.account_no} not found")
    return customer


def forecast_bill(ctx: ToolContext, session: Session, customer: CustomerView, args: NoArguments) -> ToolResult:
    """This month so far and the month's forecast bill."""
    out = forecast_out(month_forecast(session, _customer(session, customer), ctx.today()))
    if out.forecast_amount is None and out.amount_so_far is None:
        return NotFound(message=out.text)
    return ForecastFound(account_no=customer.account_no, forecast=out, message=out.text)


def usage_insights(ctx: ToolContext, session: Session, customer: CustomerView, args: NoArguments) -> ToolResult:
    """Month so far, forecast, anomaly alerts and (agency / market customers) the cost outlook."""
    days = load_policy().anomalies.report_days
    insights = insights_of(session, _customer(session, customer), ctx.today())
    alerts = [AlertOut(kind=a.kind, start=a.start, end=a.end, value=a.value, typical=a.typical, text=a.message)
              for a in insights.alerts]
    market = None
    if insights.market is not None:
        m = insights.market
        market = MarketOut(purchase_mode=m.purchase_mode, forecast_amount=m.forecast_total, usual_amount=m.usual_total,
                           usual_months=m.usual_months, deviation_percent=m.deviation_percent,
                           threshold_percent=m.threshold_percent, warning=m.warning,
                           energy_prices=[(p.period, p.price, p.tariff_version) for p in m.prices], text=m.message)
    if alerts:
        message = f"近 {days} 天发现 {len(alerts)} 项用电异常：" + "".join(a.text for a in alerts)
    else:
        message = f"近 {days} 天未发现用电异常（与您自己同季节的用电规律相比）。"
    message += insights.forecast.summary_cn()
    if market is not None:
        message += market.text
    return UsageInsightsFound(account_no=customer.account_no, forecast=forecast_out(insights.forecast), alerts=alerts,
                              alert_days=days, market=market, policy_version=insights.policy_version, message=message)


def saving_advice(ctx: ToolContext, session: Session, customer: CustomerView, args: NoArguments) -> ToolResult:
    """Energy-saving advice for this month, each saving a difference of two billing-core bills."""
    forecast, items = saving_advice_for(session, _customer(session, customer), ctx.today())
    if forecast.kwh is None:
        return NotFound(message="用电数据不足，暂无法给出节电测算。")
    out = [AdviceOut(code=i.code, title=i.title, text=i.message, saving=i.saving, base_amount=i.base_total,
                     what_if_amount=i.what_if_total, kwh=i.kwh,
                     lines=[TariffLineOut(code=l.code, name=l.name, quantity=l.quantity, unit=l.unit,
                                          unit_price=l.unit_price, amount=l.amount, tariff_version=l.tariff_version,
                                          source=l.source, bill=l.bill) for l in i.lines])
           for i in items]
    head = f"按本月预测用电约 {quantity_text(forecast.kwh.point)} 千瓦时测算："
    body = "".join(f"{n}. {item.text}" for n, item in enumerate(out, start=1)) if out else \
        "您目前的用电方式已没有可按电价测算的节省空间。"
    return AdviceFound(account_no=customer.account_no, period=forecast.period, forecast_kwh=forecast.kwh.point,
                       forecast_amount=_total(forecast.bill), items=out,
                       message=head + body + "以上金额均由计费引擎按现行电价计算，实际以账单为准。")
