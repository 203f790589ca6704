"""What every tariff family shares: reading the usage, cutting the period into parts billed under
one set of tariff versions, the bill under construction (`BillDraft.add` rounds each line half-up
to the fen), and the lines several families print: back charge, power-factor adjustment, funds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from billing_core.bill_types import BillRequest, ComputedBill, CustomerCategory, LineItem, trusted
from billing_core.errors import InvalidRequestError, TariffPeriodError, UnknownTariffError
from billing_core.money import to_fen
from billing_core.number_text import decimals, price_text, quantity_text, tidy_price
from billing_core.periods import days_between
from billing_core.tariffs.library import GovernmentFunds, PowerFactor, TariffLibrary, TariffVersion
from billing_core.tariffs.power_factor import adjustment_percent, normalise_standard, power_factor, table_for

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

FUNDS = "gd-government-funds"
POWER_FACTOR = "gd-power-factor"

PERIOD_CN = {"critical_peak": "尖峰", "peak": "峰段", "flat": "平段", "valley": "谷段"}


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
class Usage:
    total: Decimal
    tou: dict[str, Decimal] | None
    daily: list[tuple[date, Decimal, dict[str, Decimal] | None]] | None


def _tou_dict(tou) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    return {"critical_peak": tou.critical_peak, "peak": tou.peak, "flat": tou.flat, "valley": tou.valley}


def read_usage(request: BillRequest, period_days: int) -> Usage:
    """Check the usage is consistent and complete; errors name the field."""
    usage = request.usage
    tou = _tou_dict(usage.tou) if usage.tou is not None else None
    if usage.daily:
        rows = _daily_rows_in_order(request, period_days) or _checked_daily_rows(request, period_days)
        with_tou = rows[0][2] is not None
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
        return Usage(total, tou, rows)
    if tou is not None:
        total = sum(tou.values(), ZERO)
        if usage.total_kwh is not None and usage.total_kwh != total:
            raise InvalidRequestError(f"总电量 {usage.total_kwh} 与分时电量之和 {total} 不一致", "usage.total_kwh")
        return Usage(total, tou, None)
    return Usage(usage.total_kwh, None, None)  # type: ignore[arg-type]


_DailyRows = list[tuple[date, Decimal, dict[str, Decimal] | None]]


def _daily_rows_in_order(request: BillRequest, period_days: int) -> _DailyRows | None:
    """The daily rows when they pass `_checked_daily_rows` as they come from the read step: every
    day of the period once and in order, all with kWh or all with TOU registers. Checked in bulk
    (the cycle's case, per customer-day); None when anything differs, for the per-day checks to
    name the day."""
    daily = request.usage.daily or []
    if len(daily) != period_days or [d.day for d in daily] != list(days_between(request.period_start,
                                                                                  request.period_end)):
        return None
    if daily[0].tou is None:
        if any(d.tou is not None or d.kwh is None for d in daily):
            return None
        return [(d.day, d.kwh, None) for d in daily]  # type: ignore[misc]
    rows: _DailyRows = []
    for d in daily:
        t = d.tou
        if t is None:
            return None
        kwh = t.total()
        if d.kwh is not None and d.kwh != kwh:
            return None
        rows.append((d.day, kwh, _tou_dict(t)))
    return rows


def _checked_daily_rows(request: BillRequest, period_days: int) -> _DailyRows:
    """The daily rows in day order, each day checked: the error names the first day that is wrong."""
    usage = request.usage
    seen: set[date] = set()
    rows: _DailyRows = []
    for index, day in enumerate(usage.daily or []):
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
    return rows


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


def cut_segments(request: BillRequest, usage: Usage, cuts: list[date], period_days: int) -> list[Segment]:
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


def month_starts(start: date, end: date) -> list[date]:
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


def billing_months(period_days: int) -> int:
    """How many months of tier limits and basic charge a period carries (1 for a monthly bill)."""
    return max(1, int((Decimal(period_days) / DAYS_PER_MONTH).quantize(ONE, rounding=ROUND_HALF_UP)))


# ---------------------------------------------------------------- the bill under construction


@dataclass(slots=True)
class BillDraft:
    request: BillRequest
    library: TariffLibrary
    period_days: int
    months: int
    lines: list[LineItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, TariffVersion] = field(default_factory=dict)
    split: bool = False
    figures: dict[tuple[str, str], TariffVersion] = field(default_factory=dict)  # figures of caveated versions

    def uses(self, version: TariffVersion, path: str) -> None:
        """Record that a line uses the figure at `path` (e.g. ``prices.two_part.1-10kV.energy``)
        of `version`, so the bill can name any unconfirmed figure it used. Free for a version
        without unconfirmed figures, which is most of them."""
        if version.figure_caveats:
            self.figures[(version.key, path)] = version

    def unconfirmed_figures(self) -> list[str]:
        """「version field：note」 for each unconfirmed figure a line used (a field covers its sub-fields)."""
        found: dict[str, None] = {}
        for (_, path), version in self.figures.items():
            found.update(dict.fromkeys(version.caveats_for(path)))
        return list(found)

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


def check_region(library: TariffLibrary, tariff_id: str, region: str) -> None:
    key = ("region", tariff_id, region)
    if key in library.derived:
        return
    if not any(region in v.regions for v in library.versions(tariff_id)):
        raise UnknownTariffError(f"电价 {tariff_id} 不适用于地区 {region!r}", field="attributes.region")
    library.derived[key] = True


def split_note(bill: BillDraft, segments: list[Segment], reasons: dict[date, list[str]], tiers: bool) -> None:
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


def back_charge_line(bill: BillDraft, price: Decimal, version: TariffVersion, how: str, places: int) -> Decimal:
    qty = bill.request.back_charge_kwh
    kind = "补收" if qty > 0 else "退还"
    return bill.add(
        "back_charge", "退补电费", qty, "kWh", price, version,
        f"{kind}电量{quantity_text(abs(qty))}千瓦时{how}计算{kind}电费。",
        places=places,
    )


def pf_line(bill: BillDraft, usage: Usage, base: Decimal) -> None:
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
    standard = normalise_standard(request.attributes.pf_standard)  # type: ignore[arg-type]
    if version.figure_caveats:
        bill.uses(version, f"tables.{standard}.points.{pf}")
    fraction = percent / HUNDRED
    direction = "减收" if percent < 0 else ("增收" if percent > 0 else "不增不减")
    charges = "基本电费与电度电费" if any(line.code.startswith("basic_") for line in bill.lines) else "电度电费"
    bill.add(
        "pf_adjustment", "功率因数调整电费", base, "%", fraction, version,
        f"本期功率因数{pf}（有功{quantity_text(usage.total)}千瓦时、无功{quantity_text(kvarh)}千乏时），"
        f"考核标准{standard}，"
        f"按{charges}合计{base}元（不含政府性基金）{direction}{quantity_text(abs(percent))}%。",
        places=None,
    )


def funds_lines(bill: BillDraft, segments: list[Segment], rate_key: str = "ci") -> None:
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
        bill.uses(version, f"rates.{rate_key}")
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
