"""`compute_bill`: a bill request in, a bill out, line by line, from versioned tariff data.

Every amount a customer sees comes from here, so each line carries its quantity, unit price,
the tariff version and policy document it used, and one Chinese sentence explaining it. Each
line is rounded half-up to the fen and the total is the sum of the lines. A period that spans a
tariff change or a season change is split, and each part is billed under its own rules.

The hot path builds result objects with `model_construct` (the inputs are already validated),
because the billing cycle computes thousands of bills at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from billing_core.bill_types import (
    BasicChargeMode,
    BillRequest,
    ComputedBill,
    CustomerCategory,
    HouseholdType,
    LineItem,
    PurchaseMode,
    trusted,
)
from billing_core.errors import InvalidRequestError, TariffPeriodError, UnknownTariffError
from billing_core.money import to_fen
from billing_core.number_text import decimals, price_text, quantity_text, tidy_price
from billing_core.tariffs.power_factor import adjustment_percent, normalise_standard, power_factor, table_for
from billing_core.tariffs.library import (
    AgencyPurchase,
    Agricultural,
    CiTou,
    GovernmentFunds,
    HotDays,
    PowerFactor,
    ResidentialTiers,
    ResidentialTou,
    TariffLibrary,
    TariffVersion,
    get_library,
)

ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")
KWH_STEP = Decimal("0.001")
LIMIT_STEP = Decimal("1")
QTY_STEP = Decimal("0.0001")
AVERAGE_PRICE_STEP = Decimal("0.00000001")  # a residential back charge's average price, as precise as the tier prices
DEMAND_EXCESS_THRESHOLD = Decimal("1.05")  # 发改办价格〔2016〕1583号
DAYS_PER_MONTH = Decimal("365.25") / 12
PERIODS = ("critical_peak", "peak", "flat", "valley")
ROUNDING_RULE: str = ComputedBill.model_fields["rounding"].default

# Which tariff applies where. Residential tariffs are per city; C&I tariffs are province-wide.
RESIDENTIAL_TIERS = {"guangzhou": "gz-residential-tiers"}
RESIDENTIAL_TOU = {"guangzhou": "gz-residential-tou"}
CI_AGENCY = "gd-agency-purchase"
CI_TOU = "gd-ci-tou"
FUNDS = "gd-government-funds"
POWER_FACTOR = "gd-power-factor"
AGRICULTURAL = "gd-agricultural"

PERIOD_CN = {"critical_peak": "尖峰", "peak": "峰段", "flat": "平段", "valley": "谷段"}
SEASON_CN = {"summer": "夏季（5—10月）", "non_summer": "非夏季（11—4月）"}
COMPONENT_CN = {
    "energy": "电能量电费",
    "transmission": "输配电费",
    "line_loss": "上网环节线损费用",
    "system_operation": "系统运行费用",
}
COMPONENT_SHORT_CN = {"energy": "电能量", "transmission": "输配电", "line_loss": "线损", "system_operation": "系统运行"}
COMPONENTS = ("energy", "transmission", "line_loss", "system_operation")


# ---------------------------------------------------------------- usage per segment


@dataclass(slots=True)
class Segment:
    """A part of the billing period billed under one set of tariff versions and one season."""

    start: date
    end: date
    days: int
    total: Decimal
    tou: dict[str, Decimal] | None  # kWh per TOU register, when known
    daily_tou: list[tuple[date, dict[str, Decimal]]] | None = None  # exact per-day registers

    @property
    def label(self) -> str:
        return f"{self.start}至{self.end}"


@dataclass(slots=True)
class _Usage:
    total: Decimal
    tou: dict[str, Decimal] | None
    daily: list[tuple[date, Decimal, dict[str, Decimal] | None]] | None


def _tou_dict(tou) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    return {"critical_peak": tou.critical_peak, "peak": tou.peak, "flat": tou.flat, "valley": tou.valley}


def _read_usage(request: BillRequest, period_days: int) -> _Usage:
    """Check the usage is consistent and complete; errors name the field."""
    usage = request.usage
    tou = _tou_dict(usage.tou) if usage.tou is not None else None
    if usage.daily:
        seen: set[date] = set()
        rows: list[tuple[date, Decimal, dict[str, Decimal] | None]] = []
        for index, day in enumerate(usage.daily):
            where = f"usage.daily.{index}"
            if not request.period_start <= day.day <= request.period_end:
                raise InvalidRequestError(f"{day.day} 不在账期 {request.period_start} 至 {request.period_end} 内", f"{where}.day")
            if day.day in seen:
                raise InvalidRequestError(f"{day.day} 重复出现", f"{where}.day")
            seen.add(day.day)
            if day.kwh is None and day.tou is None:
                raise InvalidRequestError("需提供当日 kwh 或 tou 电量", where)
            day_tou = _tou_dict(day.tou) if day.tou is not None else None
            kwh = day.tou.total() if day.tou is not None else day.kwh
            if day.kwh is not None and day.tou is not None and day.kwh != kwh:
                raise InvalidRequestError(f"当日电量 {day.kwh} 与分时电量之和 {kwh} 不一致", f"{where}.kwh")
            rows.append((day.day, kwh, day_tou))  # type: ignore[arg-type]
        if len(seen) != period_days:
            raise InvalidRequestError(
                f"逐日电量须覆盖账期每一天：应有 {period_days} 天，只有 {len(seen)} 天", "usage.daily"
            )
        with_tou = sum(1 for row in rows if row[2] is not None)
        if 0 < with_tou < len(rows):
            raise InvalidRequestError("逐日电量要么每天都给分时电量，要么都不给", "usage.daily")
        rows.sort(key=lambda row: row[0])
        total = sum((row[1] for row in rows), ZERO)
        if usage.total_kwh is not None and usage.total_kwh != total:
            raise InvalidRequestError(f"总电量 {usage.total_kwh} 与逐日电量之和 {total} 不一致", "usage.total_kwh")
        if with_tou:
            daily_sum = {p: sum((row[2][p] for row in rows), ZERO) for p in PERIODS}  # type: ignore[index]
            if tou is not None and tou != daily_sum:
                raise InvalidRequestError("分时电量与逐日分时电量之和不一致", "usage.tou")
            tou = daily_sum
        elif tou is not None and sum(tou.values()) != total:
            raise InvalidRequestError("分时电量之和与逐日电量之和不一致", "usage.tou")
        return _Usage(total, tou, rows)
    if tou is not None:
        total = sum(tou.values(), ZERO)
        if usage.total_kwh is not None and usage.total_kwh != total:
            raise InvalidRequestError(f"总电量 {usage.total_kwh} 与分时电量之和 {total} 不一致", "usage.total_kwh")
        return _Usage(total, tou, None)
    return _Usage(usage.total_kwh, None, None)  # type: ignore[arg-type]


def _prorate(value: Decimal, weights: list[int], whole: int) -> list[Decimal]:
    """Split `value` by day counts to 0.001 kWh; the last part takes the remainder so parts add up."""
    parts: list[Decimal] = []
    given = ZERO
    for weight in weights[:-1]:
        part = (value * weight / whole).quantize(KWH_STEP, rounding=ROUND_HALF_UP)
        parts.append(part)
        given += part
    parts.append(value - given)
    return parts


def _segments(request: BillRequest, usage: _Usage, cuts: list[date], period_days: int) -> list[Segment]:
    """Cut the period at `cuts` (first days of new parts) and give each part its energy."""
    bounds = [request.period_start, *cuts, request.period_end + timedelta(days=1)]
    spans = [(bounds[i], bounds[i + 1] - timedelta(days=1)) for i in range(len(bounds) - 1)]
    if len(spans) == 1:
        start, end = spans[0]
        daily_tou = None
        if usage.daily and usage.daily[0][2] is not None:
            daily_tou = [(row[0], row[2]) for row in usage.daily]  # type: ignore[misc]
        return [Segment(start, end, period_days, usage.total, usage.tou, daily_tou)]
    weights = [(end - start).days + 1 for start, end in spans]
    segments: list[Segment] = []
    if usage.daily:
        for (start, end), days in zip(spans, weights, strict=True):
            rows = [row for row in usage.daily if start <= row[0] <= end]
            total = sum((row[1] for row in rows), ZERO)
            if rows and rows[0][2] is not None:
                tou = {p: sum((row[2][p] for row in rows), ZERO) for p in PERIODS}  # type: ignore[index]
                segments.append(Segment(start, end, days, total, tou, [(r[0], r[2]) for r in rows]))  # type: ignore[misc]
            else:
                tou = None
                if usage.tou is not None and usage.total:  # registers known only for the whole period
                    tou = dict(zip(PERIODS, _share(usage.tou, total, usage.total), strict=True))
                segments.append(Segment(start, end, days, total, tou))
        return segments
    totals = _prorate(usage.total, weights, period_days)
    tou_parts = {p: _prorate(usage.tou[p], weights, period_days) for p in PERIODS} if usage.tou else None
    for index, ((start, end), days) in enumerate(zip(spans, weights, strict=True)):
        tou = {p: tou_parts[p][index] for p in PERIODS} if tou_parts else None
        segments.append(Segment(start, end, days, totals[index], tou))
    return segments


def _share(tou: dict[str, Decimal], part_total: Decimal, whole_total: Decimal) -> list[Decimal]:
    """Registers for a part of the period, in the same proportions as the whole period."""
    values = [tou[p] for p in PERIODS]
    shares = [(v * part_total / whole_total).quantize(KWH_STEP, rounding=ROUND_HALF_UP) for v in values[:-1]]
    return [*shares, part_total - sum(shares, ZERO)]


def _month_starts(start: date, end: date) -> list[date]:
    """First days of months in (start, end]."""
    result = []
    year, month = start.year, start.month
    while True:
        month += 1
        if month == 13:
            year, month = year + 1, 1
        first = date(year, month, 1)
        if first > end:
            return result
        result.append(first)


def _billing_months(period_days: int) -> int:
    """How many months of tier limits and basic charge a period carries (1 for a monthly bill)."""
    return max(1, int((Decimal(period_days) / DAYS_PER_MONTH).quantize(ONE, rounding=ROUND_HALF_UP)))


# ---------------------------------------------------------------- the bill under construction


@dataclass(slots=True)
class _Bill:
    request: BillRequest
    library: TariffLibrary
    period_days: int
    months: int
    lines: list[LineItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, TariffVersion] = field(default_factory=dict)
    split: bool = False

    def version(self, tariff_id: str, day: date) -> TariffVersion:
        try:
            found = self.library.in_force(tariff_id, day)
        except TariffPeriodError as exc:
            where = "period_start" if day == self.request.period_start else "period_end"
            raise TariffPeriodError(str(exc).split(": ", 1)[-1], field=where) from None
        self.versions.setdefault(found.key, found)
        return found

    def add(
        self,
        code: str,
        name: str,
        quantity: Decimal,
        unit: str,
        unit_price: Decimal,
        version: TariffVersion,
        explanation: str,
        segment: Segment | None = None,
        source: str | None = None,
        *,
        places: int | None,
    ) -> Decimal:
        """Append a line. `places` is the tariff's own price precision: the stored unit price is
        written like the explanation's (number_text.tidy_price); None for a percentage line."""
        if places is not None:
            unit_price = tidy_price(unit_price, places)
        amount = to_fen(quantity * unit_price)
        self.lines.append(
            trusted(
                LineItem,
                {
                    "code": code,
                    "name": name,
                    "quantity": quantity,
                    "unit": unit,
                    "unit_price": unit_price,
                    "amount": amount,
                    "tariff_version": version.key,
                    "source": source or version.source_text,
                    "explanation": explanation,
                    "period_start": segment.start if segment is not None and self.split else None,
                    "period_end": segment.end if segment is not None and self.split else None,
                },
            )
        )
        return amount

    def part(self, segment: Segment) -> str:
        """Prefix for explanations of a split period's part."""
        return f"{segment.label}（共{segment.days}天）" if self.split else "本期"

    def month_factor(self, segment: Segment) -> Decimal:
        """Share of the monthly tier limits / basic charge a part carries (by days)."""
        if not self.split and self.months == 1:
            return ONE
        return Decimal(segment.days * self.months) / self.period_days


def _region_check(library: TariffLibrary, tariff_id: str, region: str) -> None:
    key = ("region", tariff_id, region)
    if key in library.derived:
        return
    if not any(region in v.regions for v in library.versions(tariff_id)):
        raise UnknownTariffError(f"电价 {tariff_id} 不适用于地区 {region!r}", field="attributes.region")
    library.derived[key] = True


def _split_note(bill: _Bill, segments: list[Segment], reasons: dict[date, list[str]], tiers: bool) -> None:
    if len(segments) < 2:
        return
    why = "；".join(f"{day}起{'、'.join(dict.fromkeys(r))}" for day, r in sorted(reasons.items()))
    parts = "、".join(f"{s.label}（{s.days}天）" for s in segments)
    usage = bill.request.usage
    if not usage.daily:
        how = "未提供逐日电量，各段电量按天数比例折算（保留3位小数，末段取余数）"
    elif usage.daily[0].tou is None and usage.tou is not None:
        how = "各段电量按逐日电量精确归集，各段峰平谷电量按全期分时比例分摊"
    else:
        how = "各段电量按逐日电量精确归集"
    extra = "，阶梯基数按各段天数占账期天数的比例折算并四舍五入取整" if tiers else ""
    extra += "，基本电费按天数比例折算" if bill.request.attributes.category == CustomerCategory.CI_TWO_PART else ""
    bill.notes.append(f"本账期跨越电价调整（{why}），分{len(segments)}段计费：{parts}；{how}{extra}。")


# ---------------------------------------------------------------- residential


def _residential(bill: _Bill, usage: _Usage) -> None:
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
        for day in _month_starts(start, end):
            previous = day - timedelta(days=1)
            if first.season(day.month) != first.season(previous.month):
                reasons.setdefault(day, []).append("夏季/非夏季切换")
    segments = _segments(request, usage, sorted(reasons), bill.period_days)
    bill.split = len(segments) > 1
    _split_note(bill, segments, reasons, tiers=attrs.household_type != HouseholdType.SHARED_METER)

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
            if qty == 0:
                continue
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
        _back_charge_line(bill, price, version, how, places)


def _back_charge_line(bill: _Bill, price: Decimal, version: TariffVersion, how: str, places: int) -> Decimal:
    qty = bill.request.back_charge_kwh
    kind = "补收" if qty > 0 else "退还"
    return bill.add(
        "back_charge", "退补电费", qty, "kWh", price, version,
        f"{kind}电量{quantity_text(abs(qty))}千瓦时{how}计算{kind}电费。",
        places=places,
    )


# ---------------------------------------------------------------- commercial and industrial


@dataclass(frozen=True, slots=True)
class _CiPrices:
    """Per TOU period and component, 元/kWh after the ratios and rounding; plus what they came from."""

    by_period: dict[str, dict[str, Decimal]]
    ratios: dict[str, Decimal]
    flat: dict[str, Decimal]


def _ci_prices(
    library: TariffLibrary, agency: TariffVersion, tou: TariffVersion, tariff_type: str, voltage: str,
    multiplier: Decimal, energy_override: Decimal | None,
) -> _CiPrices:
    """Derived TOU prices, computed once per (month, TOU version, customer type) and kept by the library."""
    key = ("ci_prices", agency.key, tou.key, tariff_type, voltage, multiplier, energy_override)
    cached = library.derived.get(key)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    agency_data, tou_data = agency.data, tou.data
    assert isinstance(agency_data, AgencyPurchase) and isinstance(tou_data, CiTou)
    row = agency_data.prices[tariff_type][voltage]  # type: ignore[index]
    places = tou_data.price_rounding_places
    flat = {  # written to the tariff's precision: 0.4105 × 1.000 is shown as 0.4105, not 0.4105000
        "energy": tidy_price(energy_override if energy_override is not None else row.energy * multiplier, places),
        "transmission": tidy_price(row.transmission, places),
        "line_loss": tidy_price(row.line_loss, places),
        "system_operation": tidy_price(row.system_operation, places),
    }
    step = Decimal(1).scaleb(-places)
    ratios: dict[str, Decimal] = dict(tou_data.ratios)
    if tou_data.critical_peak is not None:
        ratios["critical_peak"] = ratios["peak"] * tou_data.critical_peak.multiplier_on_peak
    prices = _CiPrices(
        {
            period: {c: (flat[c] * ratio).quantize(step, rounding=ROUND_HALF_UP) for c in COMPONENTS}
            for period, ratio in ratios.items()
        },
        ratios,
        flat,
    )
    if len(library.derived) < 100_000:  # bounded: market prices vary per customer
        library.derived[key] = prices
    return prices


def _ci(bill: _Bill, usage: _Usage) -> None:
    request, library = bill.request, bill.library
    attrs = request.attributes
    two_part = attrs.category == CustomerCategory.CI_TWO_PART
    tariff_type = "two_part" if two_part else "single"
    for tariff_id in (CI_AGENCY, CI_TOU, FUNDS):
        _region_check(library, tariff_id, attrs.region)
    prices_in = request.prices
    energy_override = prices_in.energy_price if prices_in is not None else None
    if attrs.purchase_mode == PurchaseMode.MARKET and energy_override is None:
        raise InvalidRequestError("市场化交易用户需在请求中给出合同电能量价格", "prices.energy_price")
    if attrs.purchase_mode == PurchaseMode.CATALOG:
        bill.notes.append("工商业用户已无目录电价，按电网企业代理购电价格计费。")
    if two_part:
        _check_basic_inputs(request)
        if bill.months > 1:
            bill.notes.append(f"本账期共{bill.period_days}天，基本电费按{bill.months}个月计收。")

    start, end = request.period_start, request.period_end
    reasons: dict[date, list[str]] = {}
    for day in _month_starts(start, end):
        reasons.setdefault(day, []).append("月度代理购电价格更替")
    for tariff_id, why in ((CI_TOU, "分时电价版本变更"), (FUNDS, "政府性基金标准变更")):
        for day in library.change_dates(tariff_id, start, end):
            reasons.setdefault(day, []).append(why)
    for day in library.change_dates(CI_AGENCY, start, end):
        reasons.setdefault(day, [])
    segments = _segments(request, usage, sorted(reasons), bill.period_days)
    bill.split = len(segments) > 1
    _split_note(bill, segments, reasons, tiers=False)
    if usage.tou is None:
        bill.notes.append("未提供分时电量，全部电量按平段电价计费。")

    base = ZERO  # the power-factor base: everything except government funds
    flat_all_in = ZERO
    last_agency: TariffVersion | None = None
    last_places = 0
    for segment in segments:
        agency = bill.version(CI_AGENCY, segment.start)
        bill.version(CI_AGENCY, segment.end)
        tou_version = bill.version(CI_TOU, segment.start)
        agency_data, tou_data = agency.data, tou_version.data
        assert isinstance(agency_data, AgencyPurchase) and isinstance(tou_data, CiTou)
        row = agency_data.prices[tariff_type].get(attrs.voltage_level)  # type: ignore[index]
        if row is None:
            known = "、".join(agency_data.prices[tariff_type])  # type: ignore[index]
            kind_cn = "两部制" if two_part else "单一制"
            raise UnknownTariffError(
                f"{agency.key} 没有{kind_cn}电压等级 {attrs.voltage_level!r} 的价格（已有：{known}）",
                "attributes.voltage_level",
            )
        table = _ci_prices(library, agency, tou_version, tariff_type, attrs.voltage_level, attrs.agency_price_multiplier, energy_override)
        places = tou_data.price_rounding_places
        registers = _registers(bill, segment, tou_data)
        for period in PERIODS:
            qty = registers[period]
            if qty == 0:
                continue
            prices = table.by_period[period]
            ratio = table.ratios[period]
            ratio_text = f"比价{quantity_text(ratio)}"
            if period == "critical_peak" and tou_data.critical_peak is not None:
                ratio_text = (
                    f"峰段比价{quantity_text(tou_data.ratios['peak'])}"  # type: ignore[index]
                    f"×尖峰上浮{quantity_text(tou_data.critical_peak.multiplier_on_peak)}"
                )
            qty_text = quantity_text(qty)
            for component in COMPONENTS:
                price = prices[component]
                source = None
                energy_text = ""
                if component == "energy" and energy_override is not None:
                    source = f"用户市场化交易合同电价；{tou_version.source_text}"
                    energy_text = "（合同电价）"
                elif component == "energy" and attrs.agency_price_multiplier != ONE:
                    energy_text = f"（代理购电价格×{quantity_text(attrs.agency_price_multiplier)}）"
                base += bill.add(
                    f"{component}_{period}", f"{PERIOD_CN[period]}{COMPONENT_CN[component]}", qty, "kWh", price,
                    agency if source is None else tou_version,
                    f"{bill.part(segment)}{PERIOD_CN[period]}电量{qty_text}千瓦时×{COMPONENT_SHORT_CN[component]}单价"
                    f"{price_text(price, places)}元/千瓦时"
                    f"（平段{price_text(table.flat[component], places)}元{energy_text}×{ratio_text}，按{tou_version.key}）。",
                    segment,
                    source=source if source else f"{agency.source_text}；{tou_version.source_text}",
                    places=places,
                )
        allocation = (
            prices_in.market_allocation_price
            if prices_in is not None and prices_in.market_allocation_price is not None
            else row.market_allocation
        )
        if segment.total:
            base += bill.add(
                "market_allocation", "市场化分摊费用", segment.total, "kWh", allocation, agency,
                f"{bill.part(segment)}全部电量{quantity_text(segment.total)}千瓦时按市场化分摊标准"
                f"{price_text(allocation, places)}元/千瓦时计（不分时段）。",
                segment,
                places=places,
            )
        if two_part:
            base += _basic_charge(bill, segment, agency, agency_data)
        flat_all_in = sum((table.by_period["flat"][c] for c in COMPONENTS), ZERO) + allocation
        last_agency = agency
        last_places = places

    if request.back_charge_kwh:
        assert last_agency is not None
        base += _back_charge_line(
            bill, flat_all_in, last_agency,
            f"按本期平段电价合计{price_text(flat_all_in, last_places)}元/千瓦时（电能量、输配电、线损、系统运行及市场化分摊）",
            last_places,
        )
    if attrs.pf_standard is not None:
        _pf_line(bill, usage, base)
    _funds_lines(bill, segments)


def _check_basic_inputs(request: BillRequest) -> None:
    attrs = request.attributes
    if attrs.basic_charge_mode is None:
        raise InvalidRequestError("两部制用户需指定基本电费计收方式 capacity 或 demand", "attributes.basic_charge_mode")
    if attrs.basic_charge_mode == BasicChargeMode.CAPACITY and attrs.capacity_kva is None:
        raise InvalidRequestError("按容量计收基本电费需提供变压器容量", "attributes.capacity_kva")
    if attrs.basic_charge_mode == BasicChargeMode.DEMAND:
        if attrs.contracted_demand_kw is None:
            raise InvalidRequestError("按需量计收基本电费需提供合同最大需量", "attributes.contracted_demand_kw")
        if request.usage.max_demand_kw is None:
            raise InvalidRequestError("按需量计收基本电费需提供本期实际最大需量", "usage.max_demand_kw")


def _registers(bill: _Bill, segment: Segment, tou: CiTou) -> dict[str, Decimal]:
    """kWh per period to bill: critical-peak kWh count as critical only on critical-peak days."""
    if segment.tou is None:
        return {"critical_peak": ZERO, "peak": ZERO, "flat": segment.total, "valley": ZERO}
    registers = dict(segment.tou)
    critical = registers["critical_peak"]
    if not critical:
        return registers
    rule = tou.critical_peak
    part = bill.part(segment)
    if rule is None:
        registers["peak"] += critical
        registers["critical_peak"] = ZERO
        bill.notes.append(f"{part}执行的分时电价版本不设尖峰，尖峰时段电量{quantity_text(critical)}千瓦时按峰段计费（尖峰调整电量）。")
        return registers
    if segment.start.month in rule.months:
        return registers
    hot_days = bill.version(rule.hot_days_tariff, segment.start)
    hot_data = hot_days.data
    assert isinstance(hot_data, HotDays)
    hot = hot_data.dates
    if segment.daily_tou is not None:
        on_hot_days = sum((day_tou["critical_peak"] for day, day_tou in segment.daily_tou if day in hot), ZERO)
        moved = critical - on_hot_days
        registers["critical_peak"] = on_hot_days
        registers["peak"] += moved
        if on_hot_days:
            days = "、".join(str(day) for day, t in segment.daily_tou if day in hot and t["critical_peak"])
            bill.notes.append(f"{days}日最高气温达到35℃，当日尖峰时段电量{quantity_text(on_hot_days)}千瓦时按尖峰电价计费。")
        if moved:
            bill.notes.append(f"{part}非尖峰月份（7—9月）且非高温日，尖峰时段电量{quantity_text(moved)}千瓦时按峰段计费（尖峰调整电量）。")
        return registers
    registers["peak"] += critical
    registers["critical_peak"] = ZERO
    if any(segment.start <= day <= segment.end for day in hot):
        bill.notes.append(
            f"{part}含高温日，但未提供逐日分时电量，无法确认高温日尖峰电量，尖峰时段电量{quantity_text(critical)}千瓦时暂按峰段计费。"
        )
    else:
        bill.notes.append(f"{part}非尖峰月份（7—9月）且无高温日，尖峰时段电量{quantity_text(critical)}千瓦时按峰段计费（尖峰调整电量）。")
    return registers


def _basic_charge(bill: _Bill, segment: Segment, agency: TariffVersion, data: AgencyPurchase) -> Decimal:
    """Capacity or demand charge for a part of the period; demand above 105 % of contract pays double."""
    attrs = bill.request.attributes
    rates = data.basic_charges.get(attrs.voltage_level)
    if rates is None:
        raise UnknownTariffError(f"{agency.key} 没有电压等级 {attrs.voltage_level!r} 的基本电价", "attributes.voltage_level")
    factor = bill.month_factor(segment)
    prorated = f"，按{segment.days}天折算{quantity_text(factor.quantize(QTY_STEP, rounding=ROUND_HALF_UP))}个月" if factor != ONE else ""
    part = bill.part(segment)
    if attrs.basic_charge_mode == BasicChargeMode.CAPACITY:
        qty = _month_qty(attrs.capacity_kva, factor)  # type: ignore[arg-type]
        return bill.add(
            "basic_capacity", "基本电费（按容量）", qty, "kVA·月", rates.capacity, agency,
            f"{part}按变压器容量{quantity_text(attrs.capacity_kva)}千伏安×{price_text(rates.capacity, decimals(rates.capacity))}"  # type: ignore[arg-type]
            f"元/千伏安·月计收基本电费{prorated}。",
            segment,
            places=decimals(rates.capacity),
        )
    contract = attrs.contracted_demand_kw
    actual = bill.request.usage.max_demand_kw
    assert contract is not None and actual is not None
    threshold = contract * DEMAND_EXCESS_THRESHOLD
    places = decimals(rates.demand)
    rate_text, actual_text, contract_text = price_text(rates.demand, places), quantity_text(actual), quantity_text(contract)
    if actual <= threshold:
        qty = _month_qty(contract, factor)
        return bill.add(
            "basic_demand", "基本电费（按需量）", qty, "kW·月", rates.demand, agency,
            f"{part}实际最大需量{actual_text}千瓦未超过合同需量{contract_text}千瓦的105%，按合同需量×{rate_text}元/千瓦·月计收{prorated}。",
            segment,
            places=places,
        )
    amount = bill.add(
        "basic_demand", "基本电费（按需量）", _month_qty(threshold, factor), "kW·月", rates.demand, agency,
        f"{part}实际最大需量{actual_text}千瓦超过合同需量{contract_text}千瓦的105%（{quantity_text(threshold)}千瓦），"
        f"105%以内按{rate_text}元/千瓦·月计收{prorated}。",
        segment,
        places=places,
    )
    excess = actual - threshold
    double = rates.demand * 2
    amount += bill.add(
        "basic_demand_excess", "基本电费（超合同需量105%部分加倍）", _month_qty(excess, factor), "kW·月", double, agency,
        f"{part}超出合同需量105%的{quantity_text(excess)}千瓦按基本电价加一倍即{price_text(double, places)}元/千瓦·月计收"
        f"（发改办价格〔2016〕1583号）{prorated}。",
        segment,
        source=f"{agency.source_text}；发改办价格〔2016〕1583号",
        places=places,
    )
    return amount


def _month_qty(value: Decimal, factor: Decimal) -> Decimal:
    return value if factor == ONE else (value * factor).quantize(QTY_STEP, rounding=ROUND_HALF_UP)


def _pf_line(bill: _Bill, usage: _Usage, base: Decimal) -> None:
    request = bill.request
    kvarh = request.usage.reactive_kvarh
    if kvarh is None:
        raise InvalidRequestError("执行功率因数考核的用户需提供本期无功电量", "usage.reactive_kvarh")
    version = bill.version(POWER_FACTOR, request.period_end)
    data = version.data
    assert isinstance(data, PowerFactor)
    table = table_for(data, request.attributes.pf_standard)  # type: ignore[arg-type]
    pf = power_factor(usage.total, kvarh, data.pf_decimals)
    if pf is None:
        bill.notes.append("本期有功、无功电量均为零，不计功率因数调整电费。")
        return
    percent = adjustment_percent(table, pf)
    fraction = percent / HUNDRED
    direction = "减收" if percent < 0 else ("增收" if percent > 0 else "不增不减")
    charges = "基本电费与电度电费" if any(line.code.startswith("basic_") for line in bill.lines) else "电度电费"
    bill.add(
        "pf_adjustment", "功率因数调整电费", base, "%", fraction, version,
        f"本期功率因数{pf}（有功{quantity_text(usage.total)}千瓦时、无功{quantity_text(kvarh)}千乏时），"
        f"考核标准{normalise_standard(request.attributes.pf_standard)}，"  # type: ignore[arg-type]
        f"按{charges}合计{base}元（不含政府性基金）{direction}{quantity_text(abs(percent))}%。",
        places=None,
    )


def _funds_lines(bill: _Bill, segments: list[Segment], rate_key: str = "ci") -> None:
    """Government funds on all billed kWh, outside the power-factor base, one line per rate version."""
    groups: dict[str, tuple[TariffVersion, Decimal, list[Segment]]] = {}
    for segment in segments:
        version = bill.version(FUNDS, segment.start)
        _, kwh, parts = groups.get(version.key, (version, ZERO, []))
        groups[version.key] = (version, kwh + segment.total, [*parts, segment])
    back = bill.request.back_charge_kwh
    keys = list(groups)
    for key in keys:
        version, kwh, parts = groups[key]
        if key == keys[-1]:
            kwh += back
        data = version.data
        assert isinstance(data, GovernmentFunds)
        rate = data.rates.get(rate_key)  # type: ignore[call-overload]
        if rate is None:
            raise UnknownTariffError(f"{version.key} 没有 {rate_key} 类政府性基金及附加标准", "attributes.category")
        include = f"（含退补电量{quantity_text(back)}千瓦时）" if back and key == keys[-1] else ""
        places = decimals(rate)
        bill.add(
            "government_funds", "政府性基金及附加", kwh, "kWh", rate, version,
            f"全部计费电量{quantity_text(kwh)}千瓦时{include}按{price_text(rate, places)}元/千瓦时代征政府性基金及附加，不参与功率因数调整。",
            parts[0] if len(keys) > 1 else None,
            places=places,
        )


# ---------------------------------------------------------------- agricultural


def _agricultural(bill: _Bill, usage: _Usage) -> None:
    """Agricultural production: all kWh at one catalog price, PF from 100 kVA at 0.80, then funds."""
    request, library = bill.request, bill.library
    attrs = request.attributes
    for tariff_id in (AGRICULTURAL, FUNDS):
        _region_check(library, tariff_id, attrs.region)
    if attrs.purchase_mode == PurchaseMode.MARKET:
        raise InvalidRequestError("农业生产用电执行目录电价，不参与市场化交易", "attributes.purchase_mode")
    if request.prices is not None:
        for name in ("energy_price", "market_allocation_price"):
            if getattr(request.prices, name) is not None:
                raise InvalidRequestError("农业生产用电执行目录电价，请求中不能另给价格", f"prices.{name}")
    if attrs.purchase_mode == PurchaseMode.AGENCY:
        bill.notes.append("农业生产用电由电网企业按目录电价保障供应，不执行代理购电价格，本账单按目录电价计费。")

    start, end = request.period_start, request.period_end
    reasons: dict[date, list[str]] = {}
    for tariff_id, why in ((AGRICULTURAL, "农业生产电价版本变更"), (FUNDS, "政府性基金标准变更")):
        for day in library.change_dates(tariff_id, start, end):
            reasons.setdefault(day, []).append(why)
    segments = _segments(request, usage, sorted(reasons), bill.period_days)
    bill.split = len(segments) > 1
    _split_note(bill, segments, reasons, tiers=False)
    if usage.tou is not None:
        bill.notes.append("农业生产用电按单一目录电价计费，本系统未执行农业分时电价，各时段电量合并按同一电价计算。")

    base = ZERO  # the power-factor base: everything except government funds
    last: tuple[TariffVersion, Decimal] | None = None
    funds_key = "agricultural"
    for segment in segments:
        version = bill.version(AGRICULTURAL, segment.start)
        data = version.data
        assert isinstance(data, Agricultural)
        price = data.prices.get(attrs.voltage_level)
        if price is None:
            raise UnknownTariffError(
                f"{version.key} 没有电压等级 {attrs.voltage_level!r} 的农业生产电价（已有：{'、'.join(data.prices)}）",
                "attributes.voltage_level",
            )
        funds_key = data.funds_rate
        places = decimals(price)
        base += bill.add(
            "agricultural_energy", "农业生产电费", segment.total, "kWh", price, version,
            f"{bill.part(segment)}农业生产用电{quantity_text(segment.total)}千瓦时按{attrs.voltage_level}目录电价"
            f"{price_text(price, places)}元/千瓦时计（单一制，不分时段，不含政府性基金及附加）。",
            segment,
            places=places,
        )
        last = (version, price)

    assert last is not None
    if request.back_charge_kwh:
        places = decimals(last[1])
        base += _back_charge_line(
            bill, last[1], last[0], f"按本期农业生产目录电价{price_text(last[1], places)}元/千瓦时", places
        )
    if _agricultural_pf_assessed(bill, last[0]):
        _pf_line(bill, usage, base)
    _funds_lines(bill, segments, funds_key)


def _agricultural_pf_assessed(bill: _Bill, version: TariffVersion) -> bool:
    """Agricultural users are assessed only from the tariff's capacity up, and only at its standard.

    A record without a standard is not assessed (the engine never invents an assessment), but
    the bill says so when the capacity calls for one, so the record can be corrected.
    """
    data = version.data
    assert isinstance(data, Agricultural)
    rule = data.power_factor
    attrs = bill.request.attributes
    standard, capacity = attrs.pf_standard, attrs.capacity_kva
    if standard is not None and normalise_standard(standard) != normalise_standard(rule.standard):
        raise InvalidRequestError(
            f"农业生产用电功率因数考核标准为 {rule.standard}，不能为 {standard}", "attributes.pf_standard"
        )
    large = capacity is not None and capacity >= rule.min_capacity_kva
    minimum = quantity_text(rule.min_capacity_kva)
    if standard is None:
        if large:
            bill.notes.append(
                f"用电容量{quantity_text(capacity)}千伏安已达{minimum}千伏安，按规定应执行功率因数{rule.standard}考核，"  # type: ignore[arg-type]
                "但客户档案未设考核标准，本期未计功率因数调整电费，请核对档案。"
            )
        return False
    if not large:
        held = "未登记用电容量" if capacity is None else f"用电容量{quantity_text(capacity)}千伏安不足{minimum}千伏安"
        bill.notes.append(f"农业生产用电{held}，不执行功率因数考核，本期不计功率因数调整电费。")
        return False
    return True


# ---------------------------------------------------------------- entry point


def compute_bill(request: BillRequest, library: TariffLibrary | None = None) -> ComputedBill:
    """Compute a bill, line by line, from the tariff versions in force during its period."""
    library = library or get_library()
    period_days = (request.period_end - request.period_start).days + 1
    usage = _read_usage(request, period_days)
    bill = _Bill(request, library, period_days, _billing_months(period_days))
    category = request.attributes.category
    if category == CustomerCategory.RESIDENTIAL:
        _residential(bill, usage)
    elif category in (CustomerCategory.CI_SINGLE, CustomerCategory.CI_TWO_PART):
        _ci(bill, usage)
    elif category == CustomerCategory.AGRICULTURAL:
        _agricultural(bill, usage)
    else:
        raise UnknownTariffError(f"暂无{category.value}类别的电价数据", "attributes.category")
    unconfirmed = [key for key, version in bill.versions.items() if not version.confirmed]
    if unconfirmed:
        bill.notes.append(
            f"本账单用到的部分电价数据未经官方文件完全确认（{'、'.join(unconfirmed)}），仅供核对演示，以正式公告为准。"
        )
    total = sum((line.amount for line in bill.lines), ZERO)
    return trusted(
        ComputedBill,
        {
            "account_no": request.account_no,
            "period_start": request.period_start,
            "period_end": request.period_end,
            "total_kwh": usage.total,
            "lines": bill.lines,
            "total": total,
            "rounding": ROUNDING_RULE,
            "notes": bill.notes,
            "tariff_versions": list(bill.versions),
        },
    )
