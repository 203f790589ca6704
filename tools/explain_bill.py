"""`explain_bill`: a bill's lines in plain Chinese (as stored with the bill) and why it differs
from the previous month and from the same month last year.

Each reason is a typed item carrying the figures it rests on — kWh of both bills, tier kWh and
the tier limits of the tariff version in force, days in the period, tariff versions, back-charge
and power-factor lines, late fees — read from the stored bills and the billing core's tariff
library. The sentence in `text` is assembled from those figures; nothing is estimated.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from billing_core.bill_types import CustomerCategory
from billing_core.money import ZERO
from billing_core.number_text import quantity_text
from billing_core.reading_basis import BoundaryReading, PeriodReadings, period_readings
from billing_core.tariffs.residential import TierRules, tier_rules_on
from tools.account_view import (
    BillWithLines, CustomerView, standing, visible_bills_in_periods, visible_bills_paid,
)
from tools.context import ToolContext
from tools.periods import Period
from tools.results import NotFound, ToolResult


class ExplainBillInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Period | None = Field(default=None, description="要解释的账单月份；不填则为最近一期")


class ExplainedLine(BaseModel):
    code: str
    name: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    explanation: str
    tariff_version: str
    source: str
    period_start: date | None = None
    period_end: date | None = None


class _Reason(BaseModel):
    text: str


class ConsumptionChange(_Reason):
    kind: Literal["consumption_change"] = "consumption_change"
    this_kwh: Decimal
    other_kwh: Decimal
    change_kwh: Decimal
    change_percent: Decimal | None  # None when the other bill had 0 kWh


class TierCrossing(_Reason):
    kind: Literal["tier_crossing"] = "tier_crossing"
    this_tier_2_kwh: Decimal
    this_tier_3_kwh: Decimal
    other_tier_2_kwh: Decimal
    other_tier_3_kwh: Decimal
    this_limits: tuple[int, int] | None  # monthly tier 1 / tier 2 limits in force (kWh)
    other_limits: tuple[int, int] | None


class SeasonChange(_Reason):
    kind: Literal["season_change"] = "season_change"
    this_season: str
    other_season: str
    this_limits: tuple[int, int]
    other_limits: tuple[int, int]


class PeriodDaysChange(_Reason):
    kind: Literal["period_days"] = "period_days"
    this_days: int
    other_days: int


class TariffVersionChange(_Reason):
    kind: Literal["tariff_version_change"] = "tariff_version_change"
    added: list[str]
    removed: list[str]


class BackCharge(_Reason):
    kind: Literal["back_charge"] = "back_charge"
    bill: Literal["this", "other"]
    kwh: Decimal
    amount: Decimal


class PowerFactorAdjustment(_Reason):
    kind: Literal["pf_adjustment"] = "pf_adjustment"
    this_amount: Decimal
    other_amount: Decimal
    this_rate: Decimal | None  # fraction of the base, + surcharge / − discount
    other_rate: Decimal | None


class LateFeeNote(_Reason):
    kind: Literal["late_fee"] = "late_fee"
    bill: Literal["this", "other"]
    period: str
    amount: Decimal
    days: int


Reason = Annotated[
    Union[ConsumptionChange, TierCrossing, SeasonChange, PeriodDaysChange, TariffVersionChange,
          BackCharge, PowerFactorAdjustment, LateFeeNote],
    Field(discriminator="kind"),
]


class LineChange(BaseModel):
    code: str
    name: str
    this_amount: Decimal
    other_amount: Decimal
    change: Decimal


class Comparison(BaseModel):
    against: Literal["previous_month", "same_month_last_year"]
    other_period: str
    other_amount: Decimal
    other_kwh: Decimal
    amount_change: Decimal
    kwh_change: Decimal
    reasons: list[Reason]
    line_changes: list[LineChange]


class ReadingUsed(BaseModel):
    """A meter reading the bill's energy rests on, and whether it is an estimate (估抄)."""

    role: Literal["opening", "closing"]
    asset_no: str
    day: date
    value: Decimal
    estimated: bool


class BillExplained(ToolResult):
    status: Literal["ok"] = "ok"
    period: str
    bill_no: str | None
    period_start: date
    period_end: date
    days: int
    total_kwh: Decimal
    amount: Decimal
    lines: list[ExplainedLine]
    notes: list[str]
    tariff_versions: list[str]
    rounding: str = "每行金额按四舍五入保留到分，合计为各行之和"
    vs_previous_month: Comparison | None
    vs_same_month_last_year: Comparison | None
    missing_comparisons: list[str]
    # 「为什么这么高」 about a bill that went down: by how much it is lower than last month (元, > 0),
    # None when it is not lower — so the reply can say so plainly before any detail.
    decrease_vs_previous_month: Decimal | None = None
    consumption_reason: str | None = None  # the kWh change against last month, in words, if any
    # The opening and closing active-total readings (empty when none is recorded for the period),
    # whether the bill's energy rests on an estimated reading, and that in words.
    readings: list[ReadingUsed] = []
    estimated_reading: bool | None = None  # None: no reading recorded, so it cannot be told
    reading_note: str | None = None


def _shift(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:])
    index = year * 12 + (month - 1) - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _days(bill: BillWithLines) -> int:
    return (bill.period_end - bill.period_start).days + 1


def _qty(bill: BillWithLines, *codes: str) -> Decimal:
    return sum((line.quantity for line in bill.lines if line.code in codes), ZERO)


def _amount(bill: BillWithLines, code: str) -> Decimal:
    return sum((line.amount for line in bill.lines if line.code == code), ZERO)


def _tier_rules(customer: CustomerView, bill: BillWithLines) -> TierRules | None:
    """Season and monthly limits of the residential tier tariff in force at the period start."""
    if customer.category != CustomerCategory.RESIDENTIAL:
        return None
    return tier_rules_on(customer.region, customer.household_type, bill.period_start)


def _percent(change: Decimal, base: Decimal) -> Decimal | None:
    if base == ZERO:
        return None
    return (change * 100 / base).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _signed(value: Decimal, unit: str) -> str:
    return f"增加 {quantity_text(value)} {unit}" if value > 0 else f"减少 {quantity_text(-value)} {unit}"


def _reasons(session: Session, customer: CustomerView, this: BillWithLines, other: BillWithLines, today: date,
             paid: dict[int, Decimal]) -> list[Reason]:
    reasons: list[Reason] = []
    change = this.total_kwh - other.total_kwh
    if change != ZERO:
        pct = _percent(change, other.total_kwh)
        pct_text = f"（{'+' if change > 0 else ''}{pct}%）" if pct is not None else ""
        reasons.append(ConsumptionChange(
            this_kwh=this.total_kwh, other_kwh=other.total_kwh, change_kwh=change, change_percent=pct,
            text=f"用电量从 {other.period} 的 {quantity_text(other.total_kwh)} 千瓦时{_signed(change, '千瓦时')}到 "
                 f"{quantity_text(this.total_kwh)} 千瓦时{pct_text}。"))
    this_rules, other_rules = _tier_rules(customer, this), _tier_rules(customer, other)
    t2, t3 = _qty(this, "tier_2", "tier_2_addon"), _qty(this, "tier_3", "tier_3_addon")
    o2, o3 = _qty(other, "tier_2", "tier_2_addon"), _qty(other, "tier_3", "tier_3_addon")
    if (t2, t3) != (o2, o3) and (t2 + t3 > ZERO or o2 + o3 > ZERO):
        limits = ""
        if this_rules:
            limits = f"（本期第一档上限 {this_rules.limits[0]}、第二档上限 {this_rules.limits[1]} 千瓦时）"
        reasons.append(TierCrossing(
            this_tier_2_kwh=t2, this_tier_3_kwh=t3, other_tier_2_kwh=o2, other_tier_3_kwh=o3,
            this_limits=this_rules.limits if this_rules else None,
            other_limits=other_rules.limits if other_rules else None,
            text=f"阶梯电量不同：本期第二档 {quantity_text(t2)}、第三档 {quantity_text(t3)} 千瓦时，"
                 f"{other.period} 第二档 {quantity_text(o2)}、第三档 {quantity_text(o3)} 千瓦时"
                 f"{limits}；超过档位上限的电量按更高的档位电价计费。"))
    if this_rules and other_rules and this_rules.season != other_rules.season:
        reasons.append(SeasonChange(
            this_season=this_rules.season, other_season=other_rules.season, this_limits=this_rules.limits,
            other_limits=other_rules.limits,
            text=f"本期属于{this_rules.season_text}，阶梯上限 {this_rules.limits[0]}/{this_rules.limits[1]} 千瓦时；"
                 f"{other.period} 属于{other_rules.season_text}，"
                 f"阶梯上限 {other_rules.limits[0]}/{other_rules.limits[1]} 千瓦时。"))
    if _days(this) != _days(other):
        reasons.append(PeriodDaysChange(
            this_days=_days(this), other_days=_days(other),
            text=f"计费天数不同：本期 {_days(this)} 天，{other.period} {_days(other)} 天。"))
    added = sorted(set(this.tariff_versions or []) - set(other.tariff_versions or []))
    removed = sorted(set(other.tariff_versions or []) - set(this.tariff_versions or []))
    if added or removed:
        reasons.append(TariffVersionChange(
            added=added, removed=removed,
            text=f"执行的电价版本不同：本期用 {'、'.join(added) or '同一组版本'}，"
                 f"{other.period} 用 {'、'.join(removed) or '同一组版本'}。"))
    for which, bill in (("this", this), ("other", other)):
        kwh = _qty(bill, "back_charge")
        if kwh != ZERO:
            amount = _amount(bill, "back_charge")
            label = "本期" if which == "this" else bill.period
            reasons.append(BackCharge(
                bill=which, kwh=kwh, amount=amount,
                text=f"{label}账单含退补电费：{'补收' if kwh > 0 else '退还'}电量 {abs(kwh)} 千瓦时，"
                     f"金额 {amount} 元。"))
    this_pf, other_pf = _amount(this, "pf_adjustment"), _amount(other, "pf_adjustment")
    if this_pf != other_pf:
        rate = {b.id: next((line.unit_price for line in b.lines if line.code == "pf_adjustment"), None)
                for b in (this, other)}
        reasons.append(PowerFactorAdjustment(
            this_amount=this_pf, other_amount=other_pf, this_rate=rate[this.id], other_rate=rate[other.id],
            text=f"功率因数调整电费不同：本期 {this_pf} 元，{other.period} {other_pf} 元"
                 f"（正数为增收，负数为减收）。"))
    for which, bill in (("this", this), ("other", other)):
        s = standing(session, customer, bill, today, paid[bill.id])
        if s.late_fee is not None and s.late_fee.amount > ZERO:
            label = "本期" if which == "this" else bill.period
            reasons.append(LateFeeNote(
                bill=which, period=bill.period, amount=s.late_fee.amount, days=s.late_fee.days,
                text=f"{label}账单逾期 {s.late_fee.days} 天，截至今日违约金 {s.late_fee.amount} 元；"
                     f"违约金不计入电费，出账时作为「违约金」单列一行计入下一期账单。"))
    return reasons


def _line_changes(this: BillWithLines, other: BillWithLines) -> list[LineChange]:
    names: dict[str, str] = {}
    amounts: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for index, bill in enumerate((this, other)):
        for line in bill.lines:
            names.setdefault(line.code, line.name)
            amounts[line.code][index] += line.amount
    return [LineChange(code=code, name=names[code], this_amount=a, other_amount=b, change=a - b)
            for code, (a, b) in amounts.items() if a != b]


def _compare(session: Session, customer: CustomerView, this: BillWithLines, other: BillWithLines, against: str,
             today: date, paid: dict[int, Decimal]) -> Comparison:
    return Comparison(
        against=against,  # type: ignore[arg-type]
        other_period=other.period, other_amount=other.amount, other_kwh=other.total_kwh,
        amount_change=this.amount - other.amount, kwh_change=this.total_kwh - other.total_kwh,
        reasons=_reasons(session, customer, this, other, today, paid), line_changes=_line_changes(this, other),
    )


def _summary(bill: BillWithLines, comparison: Comparison | None, label: str) -> str:
    if comparison is None:
        return ""
    change = comparison.amount_change
    head = f"比{label}（{comparison.other_period}，{comparison.other_amount} 元）"
    head += "持平" if change == ZERO else _signed(change, "元")
    return head + "：" + "".join(r.text for r in comparison.reasons)


def _day(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _reading(r: BoundaryReading) -> str:
    return f"电表 {r.asset_no} {_day(r.day)}的示数 {quantity_text(r.value)}"


def reading_note(readings: PeriodReadings) -> str | None:
    """Whether the bill's kWh rest on an estimated reading, in words (None: nothing recorded)."""
    if not readings.recorded:
        return None
    if readings.estimated_closing:
        return ("本期结束示数是估计值（估抄），不是实际读数：" + "；".join(map(_reading, readings.estimated_closing))
                + "。本期电量暂按估计示数计算。")
    if readings.estimated_opening:
        return ("本期起始示数是上期的估计值：" + "；".join(map(_reading, readings.estimated_opening))
                + "；本期结束示数是实际读数（" + "；".join(map(_reading, readings.closing))
                + "），本期电量已包含对上期估抄的更正。")
    return "本期结束示数是实际读数，不是估抄：" + "；".join(map(_reading, readings.closing)) + "。"


def explain_bill(ctx: ToolContext, session: Session, customer: CustomerView,
                 args: ExplainBillInput) -> ToolResult:
    today = ctx.today()
    period = args.period
    if period is None:
        latest = visible_bills_paid(session, customer, latest=1)
        period = latest[0][0].period if latest else None
    # The bill and both bills it is compared with, lines included, in one go.
    found = visible_bills_in_periods(session, customer, (period, _shift(period, 1), _shift(period, 12))
                                     ) if period is not None else {}
    if period not in found:
        return NotFound(message=f"没有查到{args.period + ' 的' if args.period else ''}已发行账单。")
    bill = found[period]
    paid = {b.id: b.paid for b in found.values()}
    comparisons: dict[str, Comparison | None] = {}
    missing = []
    for key, months, label in (("previous_month", 1, "上月"), ("same_month_last_year", 12, "去年同期")):
        other = found.get(_shift(bill.period, months))
        comparisons[key] = _compare(session, customer, bill, other, key, today, paid) if other else None
        if other is None:
            missing.append(f"没有{label}（{_shift(bill.period, months)}）的账单可比较")
    lines = [ExplainedLine(code=l.code, name=l.name, quantity=l.quantity, unit=l.unit,
                           unit_price=l.unit_price, amount=l.amount, explanation=l.explanation,
                           tariff_version=l.tariff_version, source=l.source,
                           period_start=l.period_start, period_end=l.period_end) for l in bill.lines]
    basis = period_readings(session, customer.id, bill.period_start, bill.period_end)
    note = reading_note(basis)
    estimated = bool(basis.estimated_closing or basis.estimated_opening) if basis.recorded else None
    used = [ReadingUsed(role=role, asset_no=r.asset_no, day=r.day, value=r.value, estimated=r.estimated)
            for role, group in (("opening", basis.opening), ("closing", basis.closing)) for r in group]
    message = (f"{bill.period} 账单共 {bill.amount} 元，用电 {quantity_text(bill.total_kwh)} 千瓦时。"
               + (note if estimated else "")  # an estimate is said whatever was asked
               + "".join(f"{l.name} {l.amount} 元；" for l in lines)
               + _summary(bill, comparisons["previous_month"], "上月")
               + _summary(bill, comparisons["same_month_last_year"], "去年同期"))
    return BillExplained(
        period=bill.period, bill_no=bill.bill_no,
        period_start=bill.period_start, period_end=bill.period_end,
        days=_days(bill), total_kwh=bill.total_kwh, amount=bill.amount, lines=lines,
        notes=list(bill.notes or []), tariff_versions=list(bill.tariff_versions or []),
        vs_previous_month=comparisons["previous_month"],
        vs_same_month_last_year=comparisons["same_month_last_year"],
        missing_comparisons=missing, message=message,
        decrease_vs_previous_month=_decrease(comparisons["previous_month"]),
        consumption_reason=_consumption_reason(comparisons["previous_month"]),
        readings=used, estimated_reading=estimated, reading_note=note,
    )


def _decrease(comparison: Comparison | None) -> Decimal | None:
    if comparison is None or comparison.amount_change >= ZERO:
        return None
    return -comparison.amount_change


def _consumption_reason(comparison: Comparison | None) -> str | None:
    if comparison is None:
        return None
    return next((r.text for r in comparison.reasons if r.kind == "consumption_change"), None)
