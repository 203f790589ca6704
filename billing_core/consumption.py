"""Meter readings → a billing period's consumption (T/CI 1281 §7.2 电量计算).

A reading is a register's end-of-day value (日冻结示数) dated by the day it closes. The energy of
a period [start, end] is, per meter and register, (last reading ≤ end − last reading < start)
× the meter's multiplier (综合倍率). A meter replaced in the period counts up to its final
reading, the new meter from its first reading, each with its own multiplier.

Nothing here guesses: a reading lower than the one before it on the same meter (no replacement
record) is returned as a `ReadingAnomaly` for review — the register gets no consumption at all,
never a negative one — and days without a reading are listed, so a bill built on incomplete
data says so. Per-day kWh are given when every day is known, so the tariff engine can split a
period exactly at a price change.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import Select, String, and_, func, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from billing_core.bill_types import DailyUsage, TouUsage, Usage, trusted_all
from billing_core.db.bulk import among
from billing_core.db.models import Meter, Reading, ReadingRegister, ReadingSource
from billing_core.errors import ReadingAnomalyError
from billing_core.periods import days_between

ZERO = Decimal("0")
KWH_STEP = Decimal("0.001")
ONE_DAY = timedelta(days=1)
# Cumulative registers: energy is the difference of two readings. MAX_DEMAND is a level instead.
CUMULATIVE_REGISTERS = tuple(r for r in ReadingRegister if r is not ReadingRegister.MAX_DEMAND)
TOU_REGISTERS = (
    ReadingRegister.CRITICAL_PEAK,
    ReadingRegister.PEAK,
    ReadingRegister.FLAT,
    ReadingRegister.VALLEY,
)
# The total register may differ from the sum of the TOU registers by rounding, not more.
REGISTER_TOLERANCE_KWH = Decimal("1")
REGISTER_TOLERANCE_SHARE = Decimal("0.01")
IN_CHUNK = 5000  # ids per IN (...) query
READ_BATCH = 20_000  # readings fetched from the driver at a time (streamed, not all at once)
# How far back to look for the reading that opens a period (a meter may skip a few days).
OPENING_LOOKBACK = timedelta(days=62)


class AnomalyKind(StrEnum):
    READING_DECREASED = "reading_decreased"  # 示数倒走 without a replacement record
    MISSING_DAYS = "missing_days"  # 漏抄: days of the period without a reading
    NO_READINGS = "no_readings"  # no usable reading for the period at all
    REGISTERS_DISAGREE = "registers_disagree"  # 总 ≠ 尖+峰+平+谷 beyond the tolerance


@dataclass(frozen=True)
class MeterInfo:
    """What consumption needs of a meter (a `models.Meter` row, or test data)."""

    meter_id: int
    asset_no: str
    multiplier: Decimal
    installed_on: date
    removed_on: date | None = None
    replaced_meter_id: int | None = None
    final_reading: Decimal | None = None  # 拆表示数 of the active-total register

    @classmethod
    def from_row(cls, meter: Meter) -> MeterInfo:
        return cls(meter.id, meter.asset_no, meter.multiplier, meter.installed_on, meter.removed_on,
                   meter.replaced_meter_id, meter.final_reading)


class ReadingValue(NamedTuple):
    """One register value of one meter at the end of one day (a tuple: cheap in the million)."""

    meter_id: int
    read_date: date
    register: ReadingRegister
    value: Decimal
    source: ReadingSource = ReadingSource.DAILY


@dataclass(frozen=True)
class ReadingAnomaly:
    """Something in the readings a person must look at before the period is billed."""

    kind: AnomalyKind
    asset_no: str | None
    register: ReadingRegister | None
    day: date | None  # the day of the decreased reading; the first missing day
    previous: Decimal | None = None
    current: Decimal | None = None
    days: tuple[date, ...] = ()  # the missing days
    message: str = ""  # Chinese, shown to the reviewer as is

    @property
    def blocks_billing(self) -> bool:
        """Missing days still give a correct total (the next reading covers them); the rest do not."""
        return self.kind is not AnomalyKind.MISSING_DAYS


class DayConsumption(NamedTuple):
    """One day's energy per cumulative register (kWh or kvarh, multiplier applied).

    A tuple, like `ReadingValue`: the read step builds one per customer-day, and a frozen
    dataclass's `__init__` cost more than the day's arithmetic."""

    day: date
    registers: dict[ReadingRegister, Decimal]


@dataclass(frozen=True)
class Consumption:
    """A period's consumption of one customer, with everything found wrong in the readings."""

    period_start: date
    period_end: date
    registers: dict[ReadingRegister, Decimal]  # only registers whose readings are consistent
    max_demand_kw: Decimal | None
    daily: list[DayConsumption]  # every day of the period, or empty when some day is unknown
    missing_days: list[date]  # days without a reading (their energy lands on the next reading)
    anomalies: list[ReadingAnomaly] = field(default_factory=list)
    # Whether every day's energy is ≥ 0, when the read step knows it (from each register's
    # column, in C) — else `to_usage` looks at every day's registers.
    daily_non_negative: bool | None = field(default=None, repr=False, compare=False)

    @property
    def needs_review(self) -> bool:
        return any(a.blocks_billing for a in self.anomalies)

    @property
    def active_kwh(self) -> Decimal | None:
        return self.registers.get(ReadingRegister.ACTIVE_TOTAL)

    def tou(self) -> TouUsage | None:
        """kWh per time-of-use register, when the meter has peak, flat and valley (尖峰 optional)."""
        if not all(r in self.registers for r in TOU_REGISTERS[1:]):
            return None
        return TouUsage(**{r.value: self.registers.get(r, ZERO) for r in TOU_REGISTERS})

    def to_usage(self) -> Usage:
        """The `Usage` of a bill request; refuses while an anomaly is waiting for review."""
        blocking = [a for a in self.anomalies if a.blocks_billing]
        if blocking:
            raise ReadingAnomalyError("；".join(a.message for a in blocking), field="readings")
        tou = self.tou()
        daily = None
        non_negative = self.daily_non_negative
        if self.daily and non_negative is None:
            non_negative = _all_days_non_negative(self.daily)
        if self.daily and non_negative:
            daily = _trusted_daily(self.daily, tou is not None)
        elif self.daily:  # with TOU registers a day's energy is their sum (the engine bills those)
            daily = [
                DailyUsage(
                    day=d.day,
                    kwh=None if tou else d.registers.get(ReadingRegister.ACTIVE_TOTAL),
                    tou=TouUsage(**{r.value: d.registers.get(r, ZERO) for r in TOU_REGISTERS})
                    if tou
                    else None,
                )
                for d in self.daily
            ]
        return Usage(
            total_kwh=tou.total() if tou else self.active_kwh,
            tou=tou,
            daily=daily,
            reactive_kvarh=self.registers.get(ReadingRegister.REACTIVE_TOTAL),
            max_demand_kw=self.max_demand_kw,
        )


def _all_days_non_negative(days: list[DayConsumption]) -> bool:
    return all(value >= ZERO for d in days for value in d.registers.values())


def _trusted_daily(days: list[DayConsumption], with_tou: bool) -> list[DailyUsage]:
    """The same `DailyUsage` list `to_usage` would validate, for days whose kWh are all ≥ 0."""
    if with_tou:
        critical_peak, peak, flat, valley = TOU_REGISTERS
        tous = trusted_all(TouUsage, (
            {"critical_peak": r.get(critical_peak, ZERO), "peak": r.get(peak, ZERO), "flat": r.get(flat, ZERO),
             "valley": r.get(valley, ZERO)} for r in (d.registers for d in days)))
        return trusted_all(DailyUsage, ({"day": d.day, "kwh": None, "tou": tou} for d, tou in zip(days, tous)))
    active = ReadingRegister.ACTIVE_TOTAL
    return trusted_all(DailyUsage, ({"day": d.day, "kwh": d.registers.get(active), "tou": None} for d in days))


def _tidy(value: Decimal) -> Decimal:
    """Show kWh with 3 decimals when that is exact (reading × multiplier gives 7 trailing zeros)."""
    short = value.quantize(KWH_STEP)
    return short if short == value else value


def _day_of(point: tuple[date, Decimal]) -> date:
    return point[0]


@dataclass
class _RegisterResult:
    kwh: Decimal = ZERO
    per_day: dict[date, Decimal] = field(default_factory=dict)
    unknown_days: set[date] = field(default_factory=set)  # days whose own energy is not known
    missing_days: set[date] = field(default_factory=set)  # days without a reading
    anomalies: list[ReadingAnomaly] = field(default_factory=list)
    has_data: bool = False


def _meter_register(
    meter: MeterInfo,
    register: ReadingRegister,
    series: list[tuple[date, Decimal]],
    start: date,
    end: date,
    result: _RegisterResult,
) -> None:
    """Add one meter's share of one cumulative register (`series` sorted by day) to `result`."""
    if meter.installed_on > end or (meter.removed_on is not None and meter.removed_on < start):
        return  # not on site during the period
    active_from = max(start, meter.installed_on + ONE_DAY)  # the installation reading is a baseline
    active_to = min(end, meter.removed_on) if meter.removed_on else end
    points = series if not series or series[-1][0] <= active_to else [p for p in series if p[0] <= active_to]
    if (
        register is ReadingRegister.ACTIVE_TOTAL
        and meter.removed_on is not None
        and meter.final_reading is not None
        and meter.removed_on <= end
        and not any(d == meter.removed_on for d, _ in points)
    ):
        points = sorted([*points, (meter.removed_on, meter.final_reading)])
    first_inside = bisect_left(points, start, key=_day_of)
    chain = points[first_inside - 1 :] if first_inside else points
    expected_count = (active_to - active_from).days + 1
    if expected_count > 0:
        # One value a day in day order: the days read while on site are one slice, counted by bisection.
        first_read = bisect_left(points, active_from, lo=first_inside, key=_day_of)
        last_read = bisect_right(points, active_to, lo=first_read, key=_day_of)
        if last_read - first_read < expected_count:
            read_days = {d for d, _ in points[first_read:last_read]}
            result.missing_days.update(d for d in days_between(active_from, active_to) if d not in read_days)
    if not chain:
        if expected_count > 0:
            result.unknown_days.update(days_between(active_from, active_to))
        return
    result.has_data = True
    if chain[0][0] >= active_from:  # no reading opens the period: its first days are unknown
        result.unknown_days.update(days_between(active_from, min(chain[0][0], active_to)))
    if chain[-1][0] < active_to:  # readings stop early: the last days are unknown (next period's)
        result.unknown_days.update(days_between(max(chain[-1][0] + ONE_DAY, active_from), active_to))
    decreased = False
    multiplier = meter.multiplier
    per_day = result.per_day
    prev_day, prev_value = chain[0]
    for day, value in chain[1:]:
        delta = value - prev_value
        if delta < 0:
            decreased = True
            result.anomalies.append(
                ReadingAnomaly(
                    kind=AnomalyKind.READING_DECREASED,
                    asset_no=meter.asset_no,
                    register=register,
                    day=day,
                    previous=prev_value,
                    current=value,
                    message=(
                        f"电表 {meter.asset_no} 的 {register.value} 示数在 {day.isoformat()} "
                        f"由 {prev_value} 降至 {value}，且无换表记录，需人工复核"
                    ),
                )
            )
        elif (day - prev_day).days == 1:
            per_day[day] = per_day.get(day, ZERO) + delta * multiplier
        else:  # the delta spans several days: none of them is known on its own
            result.unknown_days.update(d for d in days_between(prev_day + ONE_DAY, day) if start <= d <= end)
        prev_day, prev_value = day, value
    if not decreased:
        result.kwh += (chain[-1][1] - chain[0][1]) * multiplier


def compute_consumption(
    meters: Sequence[MeterInfo],
    readings: Iterable[ReadingValue],
    period_start: date,
    period_end: date,
) -> Consumption:
    """The consumption of one customer's meters over [period_start, period_end] (both included)."""
    by_meter: dict[tuple[int, ReadingRegister], list[tuple[date, Decimal]]] = defaultdict(list)
    demand: list[Decimal] = []
    multipliers = {m.meter_id: m.multiplier for m in meters}
    max_demand = ReadingRegister.MAX_DEMAND
    for meter_id, read_date, register, value, *_ in readings:  # tuples: unpacking is the fast path
        if register == max_demand:
            if period_start <= read_date <= period_end and meter_id in multipliers:
                demand.append(value * multipliers[meter_id])
            continue
        by_meter[(meter_id, register)].append((read_date, value))
    for series in by_meter.values():
        series.sort()
    return _consumption_from_series(meters, by_meter, demand, period_start, period_end)


def _consumption_from_series(
    meters: Sequence[MeterInfo],
    by_meter: dict[tuple[int, ReadingRegister], list[tuple[date, Decimal]]],
    demand: list[Decimal],
    period_start: date,
    period_end: date,
) -> Consumption:
    """The computation shared by one customer's readings and the bulk load.

    `by_meter` holds each meter's cumulative registers as (day, value) sorted by day, one value a
    day; `demand` the period's maximum-demand readings with the multiplier applied.
    """
    registers_present = {register for (_, register) in by_meter}

    totals: dict[ReadingRegister, Decimal] = {}
    anomalies: list[ReadingAnomaly] = []
    unknown_days: set[date] = set()
    missing_days: set[date] = set()
    per_day: dict[ReadingRegister, dict[date, Decimal]] = {}
    for register in CUMULATIVE_REGISTERS:
        if register not in registers_present:
            continue
        result = _RegisterResult()
        for meter in sorted(meters, key=lambda m: m.installed_on):
            series = by_meter.get((meter.meter_id, register), [])
            _meter_register(meter, register, series, period_start, period_end, result)
        anomalies.extend(result.anomalies)
        unknown_days |= result.unknown_days
        missing_days |= result.missing_days
        if not result.has_data:
            continue
        if not result.anomalies:
            totals[register] = _tidy(result.kwh)
        tidy: dict[date, Decimal] = {}
        per_day[register] = tidy
        for day, kwh in result.per_day.items():  # `_tidy` inlined: it runs per customer-day and register
            short = kwh.quantize(KWH_STEP)
            tidy[day] = short if short == kwh else kwh

    tou_sum = sum((totals[r] for r in TOU_REGISTERS if r in totals), ZERO)
    active = totals.get(ReadingRegister.ACTIVE_TOTAL)
    if active is not None and all(r in totals for r in TOU_REGISTERS[1:]):
        tolerance = max(REGISTER_TOLERANCE_KWH, active * REGISTER_TOLERANCE_SHARE)
        if abs(active - tou_sum) > tolerance:
            anomalies.append(
                ReadingAnomaly(
                    kind=AnomalyKind.REGISTERS_DISAGREE,
                    asset_no=None,
                    register=ReadingRegister.ACTIVE_TOTAL,
                    day=period_end,
                    previous=tou_sum,
                    current=active,
                    message=f"有功总电量 {active} 与尖峰平谷之和 {tou_sum} 相差超过 {tolerance}，需核对电表",
                )
            )
    missing = sorted(missing_days)
    if missing:
        anomalies.append(
            ReadingAnomaly(
                kind=AnomalyKind.MISSING_DAYS,
                asset_no=None,
                register=None,
                day=missing[0],
                days=tuple(missing),
                message=f"{len(missing)} 天缺少抄表数据（首日 {missing[0].isoformat()}），电量按前后示数差计算，无法逐日拆分",
            )
        )
    if ReadingRegister.ACTIVE_TOTAL not in totals and ReadingRegister.ACTIVE_TOTAL not in per_day:
        if not any(a.kind is AnomalyKind.READING_DECREASED for a in anomalies):
            anomalies.append(
                ReadingAnomaly(
                    kind=AnomalyKind.NO_READINGS,
                    asset_no=None,
                    register=ReadingRegister.ACTIVE_TOTAL,
                    day=None,
                    message=f"{period_start.isoformat()} 至 {period_end.isoformat()} 没有可用的有功示数",
                )
            )
    daily: list[DayConsumption] = []
    non_negative: bool | None = None
    if not unknown_days and totals and not any(a.blocks_billing for a in anomalies):
        days = days_between(period_start, period_end)
        registers = list(totals)
        columns = [per_day[r] for r in registers]
        # A day without a delta is 0: the minimum of each register's deltas decides it.
        non_negative = all(min(column.values(), default=ZERO) >= ZERO for column in columns)
        day_of = tuple.__new__  # DayConsumption's own __new__ is a Python frame per customer-day
        if len(registers) == 1:  # the common meter: one dict literal a day instead of a comprehension
            only, column = registers[0], columns[0]
            daily = [day_of(DayConsumption, (day, {only: column.get(day, ZERO)})) for day in days]
        else:
            daily = [
                day_of(DayConsumption, (day, dict(zip(registers, [c.get(day, ZERO) for c in columns], strict=True))))
                for day in days
            ]
    return Consumption(
        period_start=period_start,
        period_end=period_end,
        registers=totals,
        max_demand_kw=_tidy(max(demand)) if demand else None,
        daily=daily,
        missing_days=missing,
        anomalies=anomalies,
        daily_non_negative=non_negative,
    )


def load_consumptions(
    session: Session, customer_ids: Sequence[int], period_start: date, period_end: date
) -> dict[int, Consumption]:
    """Consumption of many customers: one meter query and one readings query per chunk of ids.

    The read step of the monthly cycle, so it avoids per-row overhead: plain Core rows (no ORM
    objects), readings ordered by meter and day and streamed, grouped straight into each meter's
    per-register series, so nothing is re-sorted or re-grouped per customer.
    """
    if session.autoflush:  # Core on the session's connection does not autoflush; keep ORM semantics
        session.flush()
    connection = session.connection()
    infos: dict[int, list[MeterInfo]] = defaultdict(list)
    meter_customer: dict[int, int] = {}
    meter_multiplier: dict[int, Decimal] = {}
    opened_before = period_start - ONE_DAY
    for chunk_start in range(0, len(customer_ids), IN_CHUNK):  # SQLite caps bound parameters
        chunk_ids = customer_ids[chunk_start : chunk_start + IN_CHUNK]
        rows = connection.execute(
            select(Meter.id, Meter.customer_id, Meter.asset_no, Meter.multiplier, Meter.installed_on,
                   Meter.removed_on, Meter.replaced_meter_id, Meter.final_reading)
            .where(among(session, Meter.customer_id, chunk_ids), Meter.installed_on <= period_end)
            .order_by(Meter.id)
        )
        for meter_id, customer_id, asset_no, multiplier, installed_on, removed_on, replaced, final in rows:
            if removed_on is not None and removed_on < opened_before:
                continue
            infos[customer_id].append(
                MeterInfo(meter_id, asset_no, multiplier, installed_on, removed_on, replaced, final)
            )
            meter_customer[meter_id] = customer_id
            meter_multiplier[meter_id] = multiplier

    series_by_customer: _SeriesByCustomer = defaultdict(dict)
    demand_by_customer: dict[int, list[Decimal]] = defaultdict(list)
    meter_ids = list(meter_customer)
    for chunk_start in range(0, len(meter_ids), IN_CHUNK):
        _read_series(connection, meter_ids[chunk_start : chunk_start + IN_CHUNK], period_start, period_end,
             meter_customer, meter_multiplier, series_by_customer, demand_by_customer)
    return {
        customer_id: _consumption_from_series(
            infos.get(customer_id, []), series_by_customer.get(customer_id, {}),
            demand_by_customer.get(customer_id, []), period_start, period_end,
        )
        for customer_id in customer_ids
    }


# customer id → (meter id, register) → [(day, value)] in day order; customer id → demand values
_SeriesByCustomer = dict[int, dict[tuple[int, ReadingRegister], list[tuple[date, Decimal]]]]
_REGISTERS = {r.value: r for r in ReadingRegister}


def _read_series(
    connection: Connection, chunk: Sequence[int], period_start: date, period_end: date,
    meter_customer: dict[int, int], meter_multiplier: dict[int, Decimal],
    series_by_customer: _SeriesByCustomer, demand_by_customer: dict[int, list[Decimal]],
) -> None:
    """One chunk of meters' readings, grouped into each meter's per-register series (and demand)."""
    registers = _REGISTERS
    max_demand = ReadingRegister.MAX_DEMAND.value
    opening_day = period_start - ONE_DAY  # the reading that normally opens the period
    fetch = _fetch_postgresql if connection.dialect.name == "postgresql" else _fetch_portable
    rows, openers = fetch(connection, chunk, period_start, period_end)
    current_meter = None
    meter_series: dict[str, list[tuple[date, Decimal]]] = {}
    for meter_id, read_date, register, value in rows:
        if meter_id != current_meter:
            current_meter, meter_series = meter_id, {}
            customer_series = series_by_customer[meter_customer[meter_id]]
            customer_demand = demand_by_customer[meter_customer[meter_id]]
            multiplier = meter_multiplier[meter_id]
        if register == max_demand:
            if period_start <= read_date <= period_end:
                customer_demand.append(value * multiplier)
            continue
        series = meter_series.get(register)
        if series is None:
            series = meter_series[register] = customer_series[(meter_id, registers[register])] = []
        series.append((read_date, value))
    # Only the last reading before the period opens it; fetch it where the opening day has none.
    for meter_id, read_date, register, value in openers:
        key = (meter_id, registers[register])
        customer_series = series_by_customer[meter_customer[meter_id]]
        series = customer_series.get(key)
        if series is None:
            customer_series[key] = [(read_date, value)]
        elif series[0][0] != opening_day:
            series.insert(0, (read_date, value))


_Rows = Iterable[tuple[int, date, str, Decimal]]  # (meter id, day, register as stored, value)


def _fetch_portable(connection: Connection, chunk: Sequence[int], period_start: date, period_end: date
                    ) -> tuple[_Rows, _Rows]:
    """The period's readings from the opening day in meter and day order (streamed), and the openers."""
    rows = connection.execute(
        # The register as its stored string: one dict look-up instead of the Enum type's per-row work.
        select(Reading.meter_id, Reading.read_date, type_coerce(Reading.register, String), Reading.value)
        .where(Reading.meter_id.in_(chunk), Reading.read_date >= period_start - ONE_DAY,
               Reading.read_date <= period_end)
        .order_by(Reading.meter_id, Reading.read_date)
        .execution_options(yield_per=READ_BATCH)
    )
    return itertools.chain.from_iterable(rows.partitions()), connection.execute(
        _last_readings_before(chunk, period_start))


_PERIOD_READINGS_SQL = """
SELECT meter_id, read_date, register, value FROM readings
WHERE meter_id = ANY(%(meters)s) AND read_date >= %(opening)s AND read_date <= %(end)s
ORDER BY meter_id, read_date
"""
_OPENERS_SQL = """
SELECT DISTINCT ON (meter_id, register) meter_id, read_date, register, value FROM readings
WHERE meter_id = ANY(%(meters)s) AND read_date >= %(lookback)s AND read_date < %(opening)s
  AND register <> %(max_demand)s
ORDER BY meter_id, register, read_date DESC
"""


def _fetch_postgresql(connection: Connection, chunk: Sequence[int], period_start: date, period_end: date
                      ) -> tuple[_Rows, _Rows]:
    """`_fetch_portable` on PostgreSQL, on the driver's cursor: the read step's per-row cost was
    SQLAlchemy's rows and server-side cursor, and its query text thousands of bound ids.

    The ids go as one array; the rows come as the driver's tuples (parsed in C), all of the
    chunk's at once (a chunk's readings are a few MB); the openers by DISTINCT ON, the last
    reading of each cumulative register in the look-back (the same rows as `_last_readings_before`).
    """
    params = {"meters": list(chunk), "opening": period_start - ONE_DAY, "end": period_end,
              "lookback": period_start - OPENING_LOOKBACK, "max_demand": ReadingRegister.MAX_DEMAND.value}
    cursor = connection.connection.cursor()
    try:
        rows = cursor.execute(_PERIOD_READINGS_SQL, params).fetchall()
        openers = cursor.execute(_OPENERS_SQL, params).fetchall()
    finally:
        cursor.close()
    return rows, openers


def _last_readings_before(meter_ids: Sequence[int], period_start: date) -> Select[tuple[int, date, str, Decimal]]:
    """Per meter and cumulative register, the last reading within the look-back before the opening day.

    The database finds them (one grouped index range scan) so the 2 months of daily readings
    before the period never reach Python: a month's bill needs only the reading that opens it.
    """
    window = (
        Reading.meter_id.in_(meter_ids),
        Reading.read_date >= period_start - OPENING_LOOKBACK,
        Reading.read_date < period_start - ONE_DAY,
        Reading.register != ReadingRegister.MAX_DEMAND,
    )
    last = (
        select(Reading.meter_id, Reading.register, func.max(Reading.read_date).label("read_date"))
        .where(*window)
        .group_by(Reading.meter_id, Reading.register)
        .subquery()
    )
    return (
        select(Reading.meter_id, Reading.read_date, type_coerce(Reading.register, String), Reading.value)
        .join(last, and_(Reading.meter_id == last.c.meter_id, Reading.register == last.c.register,
                         Reading.read_date == last.c.read_date))
        .order_by(Reading.meter_id, Reading.read_date)
    )


def load_consumption(session: Session, customer_id: int, period_start: date, period_end: date) -> Consumption:
    """Consumption of one customer over the period, from the database."""
    return load_consumptions(session, [customer_id], period_start, period_end)[customer_id]
