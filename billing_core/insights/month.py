"""This month so far and the month's forecast, for one customer, from the billing database.

kWh so far come from the same `consumption` code as the monthly cycle and are billed by
`compute_bill` on the partial period (month start to the last day read: full-month tier limits
and basic charge, as a monthly bill has). The forecast kWh (`forecast.py`), rounded to the
policy's step, and both ends of its interval are priced by `compute_bill` as what-if bills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from sqlalchemy.orm import Session

from billing_core.bill_types import BillRequest, ComputedBill, TariffAttributes
from billing_core.consumption import load_consumption
from billing_core.db.models import Customer
from billing_core.errors import BillingError
from billing_core.insights.bills import UsageShape, needs, reference_prices, shape_from_arrays, usage_of, what_if_bill
from billing_core.insights.forecast import PRIOR_CN, ForecastArrays, forecast_month
from billing_core.insights.history import DailyHistory, load_history
from billing_core.insights.policy import InsightsPolicy, load_policy
from billing_core.number_text import quantity_text
from billing_core.periods import period_bounds, period_of
from billing_core.tariffs.compute import compute_bill

ONE_DAY = timedelta(days=1)
SHAPE_DAYS = 30  # days the TOU / reactive / demand proportions of a forecast are taken from


NO_READINGS_NOTE = "{period} 月的抄表读数尚未收到，预测只依据以往用电"

@dataclass(frozen=True)
class KwhRange:
    point: Decimal
    low: Decimal
    high: Decimal


@dataclass(frozen=True)
class MonthForecast:
    """The month so far and its forecast; every amount is a `compute_bill` result."""

    account_no: str
    period: str
    last_read_day: date | None  # the last day of the month with a reading (None: nothing read yet)
    days_elapsed: int
    days_in_month: int
    mtd_kwh: Decimal | None
    mtd_bill: ComputedBill | None
    mtd_note: str | None  # why there is no bill so far (readings under review)
    kwh: KwhRange | None
    bill: ComputedBill | None
    bill_low: ComputedBill | None
    bill_high: ComputedBill | None
    level: Decimal
    method: str
    notes: list[str] = field(default_factory=list)

    def summary_cn(self) -> str:
        """One Chinese paragraph with every figure (the agent's answer is built from these)."""
        parts = []
        if self.mtd_bill is not None and self.last_read_day is not None:
            parts.append(f"{self.period} 月截至 {self.last_read_day}（{self.days_elapsed} 天）已用电 "
                         f"{quantity_text(self.mtd_bill.total_kwh)} 千瓦时，按现行电价计电费 {self.mtd_bill.total} 元"
                         + ("（含全月基本电费）" if any(line.code.startswith("basic_") for line in self.mtd_bill.lines)
                            else ""))
        elif self.mtd_note:
            parts.append(f"{self.period} 月已抄读数需人工复核，暂不能计算已发生电费（{self.mtd_note}）")
        elif NO_READINGS_NOTE.format(period=self.period) in self.notes:
            parts.append(NO_READINGS_NOTE.format(period=self.period))
        if self.kwh is not None and self.bill is not None and self.bill_low is not None and self.bill_high is not None:
            share = int((self.level * 100).to_integral_value())
            parts.append(f"预计全月用电约 {self.kwh.point} 千瓦时（{share}% 区间 {self.kwh.low}—{self.kwh.high} 千瓦时），"
                         f"电费约 {self.bill.total} 元（{self.bill_low.total}—{self.bill_high.total} 元）")
        else:
            parts.append("用电数据不足，暂无法预测本月电费")
        return "；".join(parts) + "。"


def round_kwh(value: float, step: Decimal) -> Decimal:
    """A forecast kWh figure at the policy's step (half-up), never negative."""
    exact = Decimal(repr(max(float(value), 0.0)))
    return ((exact / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step).quantize(step)


def forecast_bills(attributes: TariffAttributes, period: str, kwh: KwhRange, shape: UsageShape
                   ) -> tuple[ComputedBill, ComputedBill, ComputedBill, list[str]]:
    """The month's bill at the forecast kWh and at both interval ends (cached what-if bills)."""
    start, end = period_bounds(period)
    prices, note = reference_prices(attributes, start)
    flags = needs(attributes)
    bills = [what_if_bill(attributes, start, end, usage_of(total, shape, **flags), prices)
             for total in (kwh.point, kwh.low, kwh.high)]
    return bills[0], bills[1], bills[2], [note] if note else []


def kwh_range(forecast: ForecastArrays, row: int, step: Decimal) -> KwhRange | None:
    if np.isnan(forecast.point[row]):
        return None
    return KwhRange(round_kwh(forecast.point[row], step), round_kwh(forecast.low[row], step),
                    round_kwh(forecast.high[row], step))


def method_text(forecast: ForecastArrays, row: int, days_read: int | None = None) -> str:
    """How the forecast was made; `days_read` is the days of this month actually read (a month whose
    readings have not arrived yet has days elapsed but none read)."""
    kind = int(forecast.prior_kind[row])
    trend = forecast.trend[row]
    text = f"基准：{PRIOR_CN[kind]}"
    if kind == 1 and not np.isnan(trend):
        text += f"（趋势系数 {trend:.2f}）"
    days = forecast.days_elapsed if days_read is None else days_read
    if days:
        text += f"，结合本月已抄 {days} 天读数与星期规律"
    return text


def last_read_day(history: DailyHistory, start: date) -> date | None:
    """The last day of the month (up to the history's end) whose kWh are known."""
    lo = history.index(start)
    known = np.flatnonzero(~np.isnan(history.kwh[lo:]))
    return history.day(lo + int(known[-1])) if known.size else None


def recent_shape(history: DailyHistory, as_of: date) -> UsageShape:
    """The customer's TOU / reactive / demand proportions over the last `SHAPE_DAYS` days read."""
    lo = max(0, history.index(as_of) - SHAPE_DAYS + 1)
    hi = history.index(as_of) + 1
    return shape_from_arrays(
        history.kwh[lo:hi], None if history.tou is None else history.tou[lo:hi],
        None if history.reactive is None else history.reactive[lo:hi],
        None if history.max_demand is None else history.max_demand[lo:hi])


def month_forecast(session: Session, customer: Customer, today: date, policy: InsightsPolicy | None = None,
                   history: DailyHistory | None = None) -> MonthForecast:
    """The customer's month of `today`: so far (readings up to yesterday) and the forecast."""
    policy = policy or load_policy()
    period = period_of(today)
    start, end = period_bounds(period)
    as_of = max(today - ONE_DAY, start - ONE_DAY)
    if history is None:
        history = load_history(session, customer.id, as_of - timedelta(days=policy.forecast.history_days), as_of)
    attributes = customer.tariff_attributes()
    read_to = last_read_day(history, start) if as_of >= start else None
    mtd_bill = mtd_note = None
    mtd_kwh = None
    notes: list[str] = []
    if as_of >= start and read_to is None:
        notes.append(NO_READINGS_NOTE.format(period=period))
    if read_to is not None:
        consumption = load_consumption(session, customer.id, start, read_to)
        if consumption.needs_review:
            mtd_note = "；".join(a.message for a in consumption.anomalies if a.blocks_billing)
        else:
            prices, note = reference_prices(attributes, start)
            try:
                mtd_bill = compute_bill(BillRequest(account_no=customer.account_no, attributes=attributes,
                                                    period_start=start, period_end=read_to,
                                                    usage=consumption.to_usage(), prices=prices))
                mtd_kwh = mtd_bill.total_kwh
                notes += [note] if note else []
            except BillingError as exc:
                mtd_note = str(exc)
    forecast = forecast_month(history.kwh[np.newaxis, :], history.first_day, as_of, period, policy.forecast)
    kwh = kwh_range(forecast, 0, policy.forecast.kwh_step)
    bill = bill_low = bill_high = None
    if kwh is not None:
        shape = recent_shape(history, as_of)
        try:
            bill, bill_low, bill_high, more = forecast_bills(attributes, period, kwh, shape)
            notes += [n for n in more if n not in notes]
        except BillingError as exc:
            notes.append(f"预测电费无法计算：{exc}")
    days_read = (read_to - start).days + 1 if read_to else 0
    return MonthForecast(
        account_no=customer.account_no, period=period, last_read_day=read_to,
        days_elapsed=days_read, days_in_month=(end - start).days + 1,
        mtd_kwh=mtd_kwh, mtd_bill=mtd_bill, mtd_note=mtd_note, kwh=kwh, bill=bill, bill_low=bill_low,
        bill_high=bill_high, level=policy.forecast.interval_level, method=method_text(forecast, 0, days_read), notes=notes,
    )
