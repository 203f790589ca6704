"""Agency-purchase and market customers: the month's cost forecast from the monthly price table,
and a warning when it departs from the customer's usual level by more than the policy threshold.

The forecast bill is `compute_bill` on the forecast kWh with the month's agency-purchase
announcement (gd-agency-purchase@YYYY-MM) in force; a market customer's contract price is not in
the billing database, so the announcement's energy price stands in and the outlook says so. The
usual level is the median amount of the latest issued bills (`usual_months`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.bill_types import CustomerCategory, PurchaseMode, TariffAttributes
from billing_core.db.models import Bill, BillStatus, Customer
from billing_core.errors import BillingError
from billing_core.insights.bills import CI_AGENCY
from billing_core.insights.month import MonthForecast
from billing_core.insights.policy import MarketPolicy
from billing_core.periods import period_bounds
from billing_core.tariffs.library import AgencyPurchase, get_library

ISSUED = (BillStatus.ISSUED, BillStatus.PAID, BillStatus.PARTIALLY_PAID)


@dataclass(frozen=True)
class EnergyPrice:
    period: str
    price: Decimal  # flat-period energy price 元/kWh of the customer's tariff type and voltage
    tariff_version: str


@dataclass(frozen=True)
class MarketOutlook:
    purchase_mode: str
    period: str
    forecast_total: Decimal
    forecast_low: Decimal
    forecast_high: Decimal
    usual_total: Decimal | None
    usual_months: int
    deviation_percent: Decimal | None
    threshold_percent: Decimal
    warning: bool
    prices: list[EnergyPrice]  # this month's and last month's table figure
    message: str


def energy_price(attributes: TariffAttributes, period: str) -> EnergyPrice | None:
    """The month's agency-purchase energy price for the customer (the table's figure, as published)."""
    start, _ = period_bounds(period)
    try:
        version = get_library().in_force(CI_AGENCY, start)
    except BillingError:
        return None
    data = version.data
    assert isinstance(data, AgencyPurchase)
    kind = "two_part" if attributes.category is CustomerCategory.CI_TWO_PART else "single"
    components = data.prices[kind].get(attributes.voltage_level)
    return EnergyPrice(period, components.energy, version.key) if components is not None else None


def usual_amount(session: Session, customer_id: int, before: str, months: int) -> tuple[Decimal | None, int]:
    amounts = list(session.scalars(
        select(Bill.amount).where(Bill.customer_id == customer_id, Bill.period < before, Bill.status.in_(ISSUED))
        .order_by(Bill.period.desc()).limit(months)))
    if not amounts:
        return None, 0
    return Decimal(median(amounts)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), len(amounts)


def market_outlook(session: Session, customer: Customer, forecast: MonthForecast, policy: MarketPolicy
                   ) -> MarketOutlook | None:
    """The outlook of an agency / market customer (None for catalogue-price customers or without a forecast)."""
    attributes = customer.tariff_attributes()
    if attributes.purchase_mode is PurchaseMode.CATALOG or forecast.bill is None:
        return None
    period = forecast.period
    start, _ = period_bounds(period)
    last = (start - timedelta(days=1)).strftime("%Y-%m")
    prices = [p for p in (energy_price(attributes, period), energy_price(attributes, last)) if p is not None]
    usual, count = usual_amount(session, customer.id, period, policy.usual_months)
    total = forecast.bill.total
    deviation = None
    if usual is not None and usual > 0:
        deviation = ((total - usual) / usual * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    threshold = (policy.deviation_threshold * 100).quantize(Decimal(1))
    warning = deviation is not None and abs(deviation) > threshold
    mode_cn = "代理购电" if attributes.purchase_mode is PurchaseMode.AGENCY else "市场化交易"
    text = f"您是{mode_cn}用户，"
    if prices:
        text += f"{prices[0].period} 月代理购电电能量价格 {prices[0].price} 元/千瓦时（{prices[0].tariff_version}）"
        if len(prices) > 1:
            text += f"，上月 {prices[1].price} 元/千瓦时"
        text += "；"
    text += (f"按此价格和预测用电，本月电费预计 {total} 元（{forecast.bill_low.total}—{forecast.bill_high.total} 元）"
             if forecast.bill_low and forecast.bill_high else f"本月电费预计 {total} 元")
    if usual is not None and deviation is not None:
        direction = "高" if deviation > 0 else "低"
        text += f"，比您近 {count} 期账单的通常水平 {usual} 元{direction} {abs(deviation)}%"
        text += (f"，超过 {threshold}% 的提醒阈值，请留意用电或核对交易电价。" if warning
                 else f"，在 {threshold}% 的提醒阈值以内。")
    else:
        text += "。"
    if attributes.purchase_mode is PurchaseMode.MARKET:
        text += "市场化用户的合同电价不在账务系统中，以上按代理购电价格估算，实际以交易合同价格为准。"
    return MarketOutlook(
        purchase_mode=attributes.purchase_mode.value, period=period, forecast_total=total,
        forecast_low=forecast.bill_low.total if forecast.bill_low else total,
        forecast_high=forecast.bill_high.total if forecast.bill_high else total,
        usual_total=usual, usual_months=count, deviation_percent=deviation, threshold_percent=threshold,
        warning=warning, prices=prices, message=text)
