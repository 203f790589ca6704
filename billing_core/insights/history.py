"""A customer's daily energy as arrays: the series every insight (forecast, anomalies, advice) reads.

Daily end-of-day register values (日冻结示数) become one value a day per register, multiplier
applied, across meter replacements (the old meter up to its final reading, the new one from its
installation reading). A gap of several days spreads its delta evenly over the gap and marks
those days estimated (the total stays exact); a reading lower than the one before it gives no
energy for that stretch and is kept as a `BackwardsReading` for the anomaly alerts. Floats are
used for statistics only: every kWh a bill is computed on comes from `consumption`, every amount
from `compute_bill`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from billing_core.db.models import Meter, Reading, ReadingRegister

ONE_DAY = timedelta(days=1)
IN_CHUNK = 5000
TOU_ORDER = (ReadingRegister.CRITICAL_PEAK, ReadingRegister.PEAK, ReadingRegister.FLAT, ReadingRegister.VALLEY)
REGISTER_CN = {
    ReadingRegister.ACTIVE_TOTAL: "正向有功总", ReadingRegister.CRITICAL_PEAK: "尖峰", ReadingRegister.PEAK: "峰段",
    ReadingRegister.FLAT: "平段", ReadingRegister.VALLEY: "谷段", ReadingRegister.REACTIVE_TOTAL: "无功总",
}


@dataclass(frozen=True)
class BackwardsReading:
    """A register value lower than the one before it on the same meter (示数倒走), no replacement record."""

    asset_no: str
    register: ReadingRegister
    previous_day: date
    previous: Decimal
    day: date
    current: Decimal


@dataclass
class DailyHistory:
    """One customer's days from `first_day` to `last_day`: kWh a day (NaN = unknown) and the rest."""

    first_day: date
    last_day: date
    kwh: np.ndarray  # active kWh per day
    tou: np.ndarray | None = None  # (days, 4): 尖, 峰, 平, 谷 kWh per day
    reactive: np.ndarray | None = None  # kvarh per day
    max_demand: np.ndarray | None = None  # the day's maximum demand, kW
    estimated: np.ndarray | None = None  # True where a multi-day gap was spread evenly
    backwards: list[BackwardsReading] = field(default_factory=list)

    def index(self, day: date) -> int:
        return (day - self.first_day).days

    def day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)


def empty_history(first_day: date, last_day: date) -> DailyHistory:
    days = (last_day - first_day).days + 1
    return DailyHistory(first_day, last_day, np.full(days, np.nan), estimated=np.zeros(days, dtype=bool))


def _accumulate(target: np.ndarray, estimated: np.ndarray | None, first_day: date,
                series: list[tuple[date, Decimal]], multiplier: float) -> list[tuple[date, Decimal, date, Decimal]]:
    """Add a meter register's daily deltas into `target`; the decreasing steps are returned.

    A lower reading is kept out of the energy: the next one is measured from the last good value
    (a glitch followed by normal readings spreads over the gap instead of making a false spike);
    if the next one is still lower, the register was reset and counts from there.
    """
    decreases = []
    days = len(target)
    if not series:
        return decreases
    prev_day, prev_value = series[0]
    dropped = False
    for day, value in series[1:]:
        delta = float(value - prev_value) * multiplier
        if delta < 0:
            if not dropped:
                decreases.append((prev_day, prev_value, day, value))
                dropped = True
                continue
            prev_day, prev_value, dropped = day, value, False  # still lower: a new baseline
            continue
        dropped = False
        gap = (day - prev_day).days
        last = (day - first_day).days
        first = last - gap + 1
        lo, hi = max(first, 0), min(last, days - 1)
        if lo <= hi:
            share = delta / gap
            segment = target[lo : hi + 1]
            target[lo : hi + 1] = np.where(np.isnan(segment), share, segment + share)
            if gap > 1 and estimated is not None:
                estimated[lo : hi + 1] = True
        prev_day, prev_value = day, value
    return decreases


def load_histories(session: Session, customer_ids: Sequence[int], first_day: date, last_day: date
                   ) -> dict[int, DailyHistory]:
    """Daily histories of many customers over [first_day, last_day]: one meter and one readings query per chunk."""
    if session.autoflush:
        session.flush()
    connection = session.connection()
    days = (last_day - first_day).days + 1
    histories = {cid: empty_history(first_day, last_day) for cid in customer_ids}
    meters: dict[int, tuple[int, str, float, date | None, Decimal | None]] = {}
    for start in range(0, len(customer_ids), IN_CHUNK):
        chunk = list(customer_ids[start : start + IN_CHUNK])
        for meter_id, customer_id, asset_no, multiplier, removed_on, final in connection.execute(
            select(Meter.id, Meter.customer_id, Meter.asset_no, Meter.multiplier, Meter.removed_on, Meter.final_reading)
            .where(Meter.customer_id.in_(chunk), Meter.installed_on <= last_day)
        ):
            if removed_on is not None and removed_on < first_day - ONE_DAY:
                continue
            meters[meter_id] = (customer_id, asset_no, float(multiplier), removed_on, final)
    meter_ids = list(meters)
    registers = {r.value: r for r in ReadingRegister}
    for start in range(0, len(meter_ids), IN_CHUNK):
        chunk = meter_ids[start : start + IN_CHUNK]
        by_series: dict[tuple[int, ReadingRegister], list[tuple[date, Decimal]]] = defaultdict(list)
        for meter_id, read_date, register, value in connection.execute(
            select(Reading.meter_id, Reading.read_date, type_coerce(Reading.register, String), Reading.value)
            .where(Reading.meter_id.in_(chunk), Reading.read_date >= first_day - ONE_DAY,
                   Reading.read_date <= last_day)
            .order_by(Reading.meter_id, Reading.read_date)
        ):
            by_series[(meter_id, registers[register])].append((read_date, value))
        for (meter_id, register), series in by_series.items():
            customer_id, asset_no, multiplier, removed_on, final = meters[meter_id]
            history = histories[customer_id]
            if register is ReadingRegister.MAX_DEMAND:
                if history.max_demand is None:
                    history.max_demand = np.full(days, np.nan)
                for day, value in series:
                    i = (day - first_day).days
                    if 0 <= i < days:
                        level = float(value) * multiplier
                        current = history.max_demand[i]
                        history.max_demand[i] = level if np.isnan(current) else max(current, level)
                continue
            if (register is ReadingRegister.ACTIVE_TOTAL and removed_on is not None and final is not None
                    and removed_on <= last_day and series and series[-1][0] < removed_on):
                series = [*series, (removed_on, final)]
            if register is ReadingRegister.ACTIVE_TOTAL:
                target, estimated = history.kwh, history.estimated
            elif register is ReadingRegister.REACTIVE_TOTAL:
                if history.reactive is None:
                    history.reactive = np.full(days, np.nan)
                target, estimated = history.reactive, None
            else:
                if history.tou is None:
                    history.tou = np.full((days, 4), np.nan)
                column = TOU_ORDER.index(register)
                target, estimated = history.tou[:, column], None
                segment = np.full(days, np.nan)
                decreases = _accumulate(segment, None, first_day, series, multiplier)
                target[:] = np.where(np.isnan(target), segment, np.where(np.isnan(segment), target, target + segment))
                history.backwards.extend(BackwardsReading(asset_no, register, *d) for d in decreases)
                continue
            decreases = _accumulate(target, estimated, first_day, series, multiplier)
            history.backwards.extend(BackwardsReading(asset_no, register, *d) for d in decreases)
    for history in histories.values():
        if history.tou is not None:  # a meter without 尖 has zero critical-peak kWh where the others are known
            known = ~np.isnan(history.tou[:, 1:]).any(axis=1)
            history.tou[:, 0] = np.where(np.isnan(history.tou[:, 0]) & known, 0.0, history.tou[:, 0])
        history.backwards.sort(key=lambda b: b.day)
    return histories


def load_history(session: Session, customer_id: int, first_day: date, last_day: date) -> DailyHistory:
    return load_histories(session, [customer_id], first_day, last_day)[customer_id]
