"""Residential bills: tiers per season and household, optional TOU with tier add-ons, shared meters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from billing_core.bill_types import HouseholdType
from billing_core.errors import BillingError, InvalidRequestError, UnknownTariffError
from billing_core.number_text import decimals, price_text, quantity_text
from billing_core.tariffs.draft import (
    AVERAGE_PRICE_STEP,
    LIMIT_STEP,
    ONE,
    PERIOD_CN,
    ZERO,
    BillDraft,
    Usage,
    back_charge_line,
    cut_segments,
    month_starts,
    split_note,
)
from billing_core.tariffs.library import ResidentialTiers, ResidentialTou, TariffLibrary, get_library

# Which tariff applies where. Residential tariffs are per city; C&I tariffs are province-wide.
RESIDENTIAL_TIERS = {"guangzhou": "gz-residential-tiers"}
RESIDENTIAL_TOU = {"guangzhou": "gz-residential-tou"}
SEASON_CN = {"summer": "夏季（5—10月）", "non_summer": "非夏季（11—4月）"}


@dataclass(frozen=True, slots=True)
class TierRules:
    """The residential tier rules in force on a day: season and the monthly tier limits (kWh)."""

    tariff_version: str
    season: str
    season_text: str
    limits: tuple[int, int]


def tier_rules_on(
    region: str, household_type: HouseholdType, day: date, library: TariffLibrary | None = None
) -> TierRules | None:
    """Season and monthly tier limits a residential household has on `day`.

    None when no tier rules apply: a shared meter (one flat price), a region without residential
    tariff data, or a day no tier version covers. Callers explaining a bill use this instead of
    reading the tariff tables themselves.
    """
    if household_type == HouseholdType.SHARED_METER:
        return None
    tariff_id = RESIDENTIAL_TIERS.get(region)
    if tariff_id is None:
        return None
    try:
        version = (library or get_library()).in_force(tariff_id, day)
    except BillingError:
        return None
    data = version.data
    if not isinstance(data, ResidentialTiers):
        return None
    household = "many_person" if household_type == HouseholdType.MANY_PERSON else "ordinary"
    season = data.season(day.month)
    low, high = data.limits[household][season]  # type: ignore[index]
    return TierRules(version.key, season, SEASON_CN[season], (int(low), int(high)))


def bill_residential(bill: BillDraft, usage: Usage) -> None:
    request, library = bill.request, bill.library
    attrs = request.attributes
    region = attrs.region
    if region not in RESIDENTIAL_TIERS:
        raise UnknownTariffError(f"地区 {region!r} 没有居民电价数据（已有：{'、'.join(RESIDENTIAL_TIERS)}）", "attributes.region")
    tiers_id = RESIDENTIAL_TIERS[region]
    tou_id = RESIDENTIAL_TOU.get(region) if attrs.residential_tou else None
    if attrs.residential_tou:
        if attrs.household_type == HouseholdType.SHARED_METER:
            raise UnknownTariffError("合表用户没有居民分时电价数据", "attributes.residential_tou")
        if tou_id is None:
            raise UnknownTariffError(f"地区 {region!r} 没有居民分时电价数据", "attributes.residential_tou")
        if usage.tou is None:
            raise InvalidRequestError("居民分时电价用户需提供峰、平、谷分时电量", "usage.tou")

    start, end = request.period_start, request.period_end
    reasons: dict[date, list[str]] = {}
    for tariff_id in filter(None, (tiers_id, tou_id)):
        for day in library.change_dates(tariff_id, start, end):
            reasons.setdefault(day, []).append(f"{tariff_id}版本变更")
    first = bill.version(tiers_id, start).data
    assert isinstance(first, ResidentialTiers)
    if attrs.household_type != HouseholdType.SHARED_METER:
        for day in month_starts(start, end):
            previous = day - timedelta(days=1)
            if first.season(day.month) != first.season(previous.month):
                reasons.setdefault(day, []).append("夏季/非夏季切换")
    segments = cut_segments(request, usage, sorted(reasons), bill.period_days)
    bill.split = len(segments) > 1
    split_note(bill, segments, reasons, tiers=attrs.household_type != HouseholdType.SHARED_METER)

    if bill.months > 1 and attrs.household_type != HouseholdType.SHARED_METER:
        bill.notes.append(f"本账期共{bill.period_days}天，按{bill.months}个月计算阶梯基数。")
    energy_amount = ZERO
    for segment in segments:
        tiers_version = bill.version(tiers_id, segment.start)
        if segment.end != segment.start:
            bill.version(tiers_id, segment.end)
        tiers = tiers_version.data
        assert isinstance(tiers, ResidentialTiers)
        if attrs.household_type == HouseholdType.SHARED_METER:
            price = tiers.prices["shared_meter"]
            places = decimals(price)
            energy_amount += bill.add(
                "shared_meter", "合表用户电费", segment.total, "kWh", price, tiers_version,
                f"{bill.part(segment)}合表用户不执行阶梯电价，{quantity_text(segment.total)}千瓦时按"
                f"{price_text(price, places)}元/千瓦时计（含政府性基金及附加）。",
                segment,
                places=places,
            )
            continue
        season = tiers.season(segment.start.month)
        household = "many_person" if attrs.household_type == HouseholdType.MANY_PERSON else "ordinary"
        monthly_1, monthly_2 = tiers.limits[household][season]
        bill.uses(tiers_version, f"limits.{household}")
        limit_1, limit_2 = Decimal(monthly_1), Decimal(monthly_2)
        factor = bill.month_factor(segment)
        if factor != ONE:
            limit_1 = (limit_1 * factor).quantize(LIMIT_STEP, rounding=ROUND_HALF_UP)
            limit_2 = (limit_2 * factor).quantize(LIMIT_STEP, rounding=ROUND_HALF_UP)
        kwh = segment.total
        in_tier_1 = min(kwh, limit_1)
        in_tier_2 = min(max(kwh - limit_1, ZERO), limit_2 - limit_1)
        in_tier_3 = max(kwh - limit_2, ZERO)
        who = "多人口家庭" if household == "many_person" else "一户一表"
        low_text, high_text, kwh_text = quantity_text(limit_1), quantity_text(limit_2), quantity_text(kwh)
        limits_text = f"{who}{SEASON_CN[season]}第一档上限{low_text}千瓦时、第二档上限{high_text}千瓦时（均含本数）"
        if factor != ONE:
            limits_text += "，已按天数折算" if bill.split else f"，按{bill.months}个月计"
        if tou_id is None:
            for code, name, qty, tier_key, rule in (
                ("tier_1", "第一档电费", in_tier_1, "tier_1", f"不超过{low_text}千瓦时"),
                ("tier_2", "第二档电费", in_tier_2, "tier_2", f"{low_text}至{high_text}千瓦时之间"),
                ("tier_3", "第三档电费", in_tier_3, "tier_3", f"超过{high_text}千瓦时"),
            ):
                if qty == 0 and code != "tier_1":
                    continue
                price = tiers.prices[tier_key]  # type: ignore[index]
                places = decimals(price)
                energy_amount += bill.add(
                    code, name, qty, "kWh", price, tiers_version,
                    f"{bill.part(segment)}用电{kwh_text}千瓦时，其中{rule}的{quantity_text(qty)}千瓦时按{name[:3]}电价"
                    f"{price_text(price, places)}元/千瓦时计（{limits_text}，电价含政府性基金及附加）。",
                    segment,
                    places=places,
                )
            continue
        tou_version = bill.version(tou_id, segment.start)
        tou_data = tou_version.data
        assert isinstance(tou_data, ResidentialTou) and segment.tou is not None
        registers = dict(segment.tou)
        if registers["critical_peak"]:
            registers["peak"] += registers["critical_peak"]
            bill.notes.append(
                f"居民分时电价不设尖峰，{bill.part(segment)}尖峰时段电量{quantity_text(registers['critical_peak'])}千瓦时按峰段计费。"
            )
        for period in ("peak", "flat", "valley"):
            qty = registers[period]
            if qty == 0 and not (period == "flat" and segment.total == 0):
                continue  # a part without any use still shows one (zero) line, like tier_1 does
            price = tou_data.tier_1_prices[period]  # type: ignore[index]
            places = decimals(price)
            energy_amount += bill.add(
                f"tou_{period}", f"{PERIOD_CN[period]}电费", qty, "kWh", price, tou_version,
                f"{bill.part(segment)}{PERIOD_CN[period]}电量{quantity_text(qty)}千瓦时按第一档{PERIOD_CN[period]}电价"
                f"{price_text(price, places)}元/千瓦时计"
                f"（不含基金部分按比价{quantity_text(tou_data.ratios[period])}，含政府性基金及附加）。",  # type: ignore[index]
                segment,
                places=places,
            )
        for code, name, qty, addon_key, rule in (
            ("tier_2_addon", "第二档加价", in_tier_2, "tier_2", f"{low_text}至{high_text}千瓦时之间"),
            ("tier_3_addon", "第三档加价", in_tier_3, "tier_3", f"超过{high_text}千瓦时"),
        ):
            if qty == 0:
                continue
            price = tou_data.tier_addons[addon_key]  # type: ignore[index]
            places = decimals(price)
            energy_amount += bill.add(
                code, name, qty, "kWh", price, tou_version,
                f"{bill.part(segment)}总电量{kwh_text}千瓦时中{rule}的{quantity_text(qty)}千瓦时在分时电费之外加收"
                f"{price_text(price, places)}元/千瓦时（{limits_text}）。",
                segment,
                places=places,
            )

    if request.back_charge_kwh:
        last = segments[-1]
        version = bill.version(tou_id or tiers_id, last.start)
        if usage.total:
            price = (energy_amount / usage.total).quantize(AVERAGE_PRICE_STEP, rounding=ROUND_HALF_UP)
            places = 0  # a computed average, not a tariff figure: only the digits that count, at least 2
            how = (
                f"按本期平均电价{price_text(price, places)}元/千瓦时"
                f"（本期电费{energy_amount}元÷电量{quantity_text(usage.total)}千瓦时）"
            )
        else:
            tiers = bill.version(tiers_id, last.start).data
            key = "shared_meter" if attrs.household_type == HouseholdType.SHARED_METER else "tier_1"
            price = tiers.prices[key]
            places = decimals(price)
            how = f"本期无用电，按{'合表' if key == 'shared_meter' else '第一档'}电价{price_text(price, places)}元/千瓦时"
        back_charge_line(bill, price, version, how, places)
