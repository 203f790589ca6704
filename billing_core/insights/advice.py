"""Energy-saving advice whose money is computed by the billing core: each item is the difference
of two `compute_bill` bills of the month (the forecast usage and the same usage changed one way),
never arithmetic on prices, and lists the tariff lines it rests on.

* residential tiers: kWh left before the next tier this month, and what keeping to the limit
  would cost against the forecast;
* time-of-use customers: moving X % of the peak (and critical-peak) kWh to the valley;
* power-factor-assessed C&I customers below their standard: reactive energy brought down to
  reach the standard (the 〔83〕水电财字第215号 table in gd-power-factor);
* two-part customers: the basic charge by capacity against by demand for their own load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import numpy as np

from billing_core.bill_types import (
    BasicChargeMode,
    ComputedBill,
    CustomerCategory,
    HouseholdType,
    LineItem,
    TariffAttributes,
    TouUsage,
    Usage,
)
from billing_core.errors import BillingError
from billing_core.insights.bills import UsageShape, needs, reference_prices, usage_of, what_if_bill
from billing_core.insights.policy import AdvicePolicy
from billing_core.number_text import quantity_text as q
from billing_core.periods import period_bounds
from billing_core.tariffs.power_factor import power_factor
from billing_core.tariffs.residential import tier_rules_on

KWH_STEP = Decimal("0.001")
ZERO = Decimal("0")
HUNDRED = Decimal("100")


@dataclass(frozen=True)
class TariffLine:
    """A bill line an advice item rests on: what it charges, at which price, under which tariff."""

    code: str
    name: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    tariff_version: str
    source: str
    bill: str  # "base": the forecast month as it is; "what_if": the changed month

    @classmethod
    def of(cls, line: LineItem, bill: str) -> TariffLine:
        return cls(line.code, line.name, line.quantity, line.unit, line.unit_price, line.amount,
                   line.tariff_version, line.source, bill)


@dataclass(frozen=True)
class AdviceItem:
    code: str  # tier_headroom / tou_shift_<X> / power_factor / basic_charge_mode
    title: str
    message: str  # Chinese, every figure from the bills below
    saving: Decimal | None  # 元 a month: base bill − what-if bill (None: nothing to price)
    base_total: Decimal | None = None
    what_if_total: Decimal | None = None
    kwh: Decimal | None = None  # the kWh the item is about (left in the tier, moved to the valley)
    lines: list[TariffLine] = field(default_factory=list)


def _lines(bills: list[ComputedBill], wanted, names: tuple[str, ...] = ("base", "what_if")  # type: ignore[no-untyped-def]
           ) -> list[TariffLine]:
    """The wanted lines of each bill, labelled with the bill they come from."""
    return [TariffLine.of(line, name) for bill, name in zip(bills, names, strict=False) for line in bill.lines
            if wanted(line.code)]


def _bill(attributes: TariffAttributes, period: str, usage: Usage) -> ComputedBill:
    start, end = period_bounds(period)
    prices, _ = reference_prices(attributes, start)
    return what_if_bill(attributes, start, end, usage, prices)


def tier_headroom(attributes: TariffAttributes, period: str, mtd_kwh: Decimal | None, forecast_kwh: Decimal,
                  shape: UsageShape) -> AdviceItem | None:
    """kWh left before the next residential tier, and the bill at the limit against the forecast bill."""
    if attributes.category is not CustomerCategory.RESIDENTIAL or attributes.household_type is HouseholdType.SHARED_METER:
        return None
    start, _ = period_bounds(period)
    rules = tier_rules_on(attributes.region, attributes.household_type, start)
    if rules is None:
        return None
    used = mtd_kwh or ZERO
    limit_1, limit_2 = (Decimal(v) for v in rules.limits)
    limit, tier_name, this_tier = (limit_1, "第二档", "第一档") if used <= limit_1 else (limit_2, "第三档", "第二档")
    left = max(limit - used, ZERO)
    flags = needs(attributes)
    base = _bill(attributes, period, usage_of(forecast_kwh, shape, **flags))
    text = (f"{rules.season_text}每月{this_tier}上限为 {limit} 千瓦时（{rules.tariff_version}，超过部分进入{tier_name}），"
            + (f"本月已用 {q(used)} 千瓦时，" if mtd_kwh is not None else "本月读数尚未收到，")
            + f"距{tier_name}还有 {q(left)} 千瓦时。")
    if forecast_kwh <= limit:
        return AdviceItem("tier_headroom", f"距{tier_name}还有 {q(left)} 千瓦时", text + f"按预测全月约 {forecast_kwh} 千瓦时，"
                          f"不会进入{tier_name}，预计电费 {base.total} 元。", None, base.total, None, left,
                          _lines([base], lambda c: c.startswith("tier_") or c.startswith("tou_")))
    capped = _bill(attributes, period, usage_of(limit, shape, **flags))
    saving = base.total - capped.total
    over = forecast_kwh - limit
    return AdviceItem(
        "tier_headroom", f"距{tier_name}还有 {q(left)} 千瓦时",
        text + f"按预测全月约 {forecast_kwh} 千瓦时，将有 {over} 千瓦时进入{tier_name}，预计电费 {base.total} 元；"
        f"若把全月用电控制在 {limit} 千瓦时以内，电费为 {capped.total} 元，可少交 {saving} 元。",
        saving, base.total, capped.total, left,
        _lines([base, capped], lambda c: c.startswith("tier_") or c.endswith("_addon")))


def tou_shift(attributes: TariffAttributes, period: str, forecast_kwh: Decimal, shape: UsageShape,
              percent: Decimal) -> AdviceItem | None:
    """Moving `percent` % of the peak and critical-peak kWh to the valley, priced both ways."""
    flags = needs(attributes)
    if not flags["needs_tou"] or shape.tou_shares is None:
        return None
    usage = usage_of(forecast_kwh, shape, **flags)
    tou = usage.tou
    if tou is None or tou.peak + tou.critical_peak == 0:
        return None
    share = percent / HUNDRED
    moved_cp = (tou.critical_peak * share).quantize(KWH_STEP, rounding=ROUND_HALF_UP)
    moved_peak = (tou.peak * share).quantize(KWH_STEP, rounding=ROUND_HALF_UP)
    moved = moved_cp + moved_peak
    shifted = usage.model_copy(update={"tou": TouUsage(
        critical_peak=tou.critical_peak - moved_cp, peak=tou.peak - moved_peak, flat=tou.flat,
        valley=tou.valley + moved)})
    base, after = _bill(attributes, period, usage), _bill(attributes, period, shifted)
    saving = base.total - after.total
    pct = percent.quantize(Decimal(1)) if percent == percent.to_integral_value() else percent.normalize()
    return AdviceItem(
        f"tou_shift_{pct}", f"把 {pct}% 峰段用电移到谷段",
        f"按预测全月约 {forecast_kwh} 千瓦时（峰段{'及尖峰' if tou.critical_peak else ''} {q(tou.peak + tou.critical_peak)} 千瓦时），"
        f"把其中 {pct}%（{q(moved)} 千瓦时）移到谷段（0:00—8:00）用电，电费由 {base.total} 元降为 {after.total} 元，"
        f"每月约省 {saving} 元。",
        saving, base.total, after.total, moved,
        _lines([base, after], lambda c: c.endswith("_peak") or c.endswith("_valley")))


def power_factor_item(attributes: TariffAttributes, period: str, forecast_kwh: Decimal, shape: UsageShape
                      ) -> AdviceItem | None:
    """A PF-assessed customer below the standard: the bill with reactive energy brought down to the standard."""
    flags = needs(attributes)
    if not flags["needs_reactive"] or attributes.pf_standard is None or shape.reactive_per_kwh is None:
        return None
    usage = usage_of(forecast_kwh, shape, **flags)
    kvarh = usage.reactive_kvarh or ZERO
    current = power_factor(forecast_kwh, kvarh)
    standard = attributes.pf_standard
    if current is None or current >= standard:
        return None
    # kvarh at which PF = standard exactly: kWh × √(1/PF² − 1), rounded down so the PF reaches it.
    target = (forecast_kwh * (1 / (standard * standard) - 1).sqrt()).quantize(KWH_STEP, rounding=ROUND_DOWN)
    base = _bill(attributes, period, usage)
    improved = _bill(attributes, period, usage.model_copy(update={"reactive_kvarh": target}))
    saving = base.total - improved.total
    return AdviceItem(
        "power_factor", f"把功率因数从 {current} 提高到 {standard}",
        f"按预测全月有功约 {forecast_kwh} 千瓦时、无功约 {q(kvarh)} 千乏时，功率因数 {current}，低于考核标准 {standard}，"
        f"力调电费增收；加装或投运无功补偿、把无功降到约 {q(target)} 千乏时（功率因数 {standard}），"
        f"电费由 {base.total} 元降为 {improved.total} 元，每月约省 {saving} 元。",
        saving, base.total, improved.total, None,
        _lines([base, improved], lambda c: c == "pf_adjustment"))


def basic_charge_item(attributes: TariffAttributes, period: str, forecast_kwh: Decimal, shape: UsageShape,
                      max_demand_kw: Decimal | None) -> AdviceItem | None:
    """A two-part customer: this month's bill with the basic charge by capacity and by demand."""
    if attributes.category is not CustomerCategory.CI_TWO_PART or attributes.basic_charge_mode is None:
        return None
    # The month's demand as the forecast bill has it (the last days read); else the history's peak.
    max_demand_kw = shape.max_demand_kw if shape.max_demand_kw is not None else max_demand_kw
    if attributes.capacity_kva is None or max_demand_kw is None:
        return None
    demand_attrs = attributes.model_copy(update={
        "basic_charge_mode": BasicChargeMode.DEMAND,
        "contracted_demand_kw": attributes.contracted_demand_kw
        or max_demand_kw.quantize(Decimal(1), rounding=ROUND_HALF_UP)})
    capacity_attrs = attributes.model_copy(update={"basic_charge_mode": BasicChargeMode.CAPACITY})
    demand_shape = UsageShape(shape.tou_shares, shape.reactive_per_kwh, max_demand_kw)
    by_demand = _bill(demand_attrs, period, usage_of(forecast_kwh, demand_shape, **needs(demand_attrs)))
    by_capacity = _bill(capacity_attrs, period, usage_of(forecast_kwh, demand_shape, **needs(capacity_attrs)))
    current_is_demand = attributes.basic_charge_mode is BasicChargeMode.DEMAND
    base, other = (by_demand, by_capacity) if current_is_demand else (by_capacity, by_demand)
    saving = base.total - other.total
    now_cn, other_cn = ("按需量", "按容量") if current_is_demand else ("按容量", "按需量")
    verdict = (f"改为{other_cn}计收每月约省 {saving} 元，可在下一季度申请变更" if saving > 0
               else f"目前{now_cn}计收更划算（{other_cn}每月多 {-saving} 元），无需变更")
    return AdviceItem(
        "basic_charge_mode", f"基本电费{now_cn}还是{other_cn}更省",
        f"按预测全月约 {forecast_kwh} 千瓦时、最大需量 {q(max_demand_kw)} 千瓦、变压器容量 {q(attributes.capacity_kva)} 千伏安："
        f"按容量计收电费 {by_capacity.total} 元，按需量计收（合同需量 {q(demand_attrs.contracted_demand_kw)} 千瓦）电费 "
        f"{by_demand.total} 元；{verdict}。",
        saving, base.total, other.total, None,
        _lines([by_capacity, by_demand], lambda c: c.startswith("basic_"), ("capacity", "demand")))


def saving_advice(attributes: TariffAttributes, period: str, forecast_kwh: Decimal, mtd_kwh: Decimal | None,
                  shape: UsageShape, policy: AdvicePolicy, max_demand_kw: Decimal | None = None) -> list[AdviceItem]:
    """Every advice item that applies to the customer, each priced by `compute_bill`."""
    items: list[AdviceItem | None] = []
    try:
        items.append(tier_headroom(attributes, period, mtd_kwh, forecast_kwh, shape))
        items += [tou_shift(attributes, period, forecast_kwh, shape, p) for p in policy.tou_shift_percents]
        items.append(power_factor_item(attributes, period, forecast_kwh, shape))
        items.append(basic_charge_item(attributes, period, forecast_kwh, shape, max_demand_kw))
    except BillingError as exc:  # a what-if the tariff data cannot price is left out, said once
        items.append(AdviceItem("unavailable", "部分建议无法测算", f"部分节电建议无法测算：{exc}", None))
    return [item for item in items if item is not None]


def peak_demand(max_demand: np.ndarray | None) -> Decimal | None:
    """The highest daily maximum demand in the history (kW), if the meter records demand."""
    if max_demand is None or np.isnan(max_demand).all():
        return None
    return Decimal(repr(float(np.nanmax(max_demand)))).quantize(KWH_STEP, rounding=ROUND_HALF_UP)

