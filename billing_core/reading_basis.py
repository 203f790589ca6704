"""Which meter readings a bill's energy rests on, and whether one of them is an estimate (估抄).

A period's energy is, per meter, the active-total reading that closes it minus the one that opens
it (`consumption.py`). A reading the collection system could not deliver may be stored as an
estimate (`ReadingSource.ESTIMATED`); when the closing reading is one, the bill's kWh are
provisional until an actual reading corrects them, and when the opening reading is one, this
bill carries the correction of the previous estimate. A customer asking 「为什么我的电费是估抄的」
is told which reading it was, from these rows, never from a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from billing_core.consumption import ONE_DAY, OPENING_LOOKBACK
from billing_core.db.models import Meter, Reading, ReadingRegister, ReadingSource


@dataclass(frozen=True)
class BoundaryReading:
    """The active-total reading that opens or closes a period on one meter."""

    asset_no: str
    day: date
    value: Decimal
    source: ReadingSource

    @property
    def estimated(self) -> bool:
        return self.source is ReadingSource.ESTIMATED


@dataclass(frozen=True)
class PeriodReadings:
    """Per meter on site in the period, its opening and closing readings (either may be missing)."""

    period_start: date
    period_end: date
    opening: tuple[BoundaryReading, ...]
    closing: tuple[BoundaryReading, ...]

    @property
    def recorded(self) -> bool:
        return bool(self.closing)

    @property
    def estimated_closing(self) -> tuple[BoundaryReading, ...]:
        return tuple(r for r in self.closing if r.estimated)

    @property
    def estimated_opening(self) -> tuple[BoundaryReading, ...]:
        return tuple(r for r in self.opening if r.estimated)


def _last_reading(session: Session, meter: Meter, after: date, up_to: date) -> BoundaryReading | None:
    row = session.execute(
        select(Reading.read_date, Reading.value, Reading.source)
        .where(Reading.meter_id == meter.id, Reading.register == ReadingRegister.ACTIVE_TOTAL,
               Reading.read_date > after, Reading.read_date <= up_to)
        .order_by(Reading.read_date.desc()).limit(1)
    ).first()
    return BoundaryReading(meter.asset_no, row[0], row[1], ReadingSource(row[2])) if row else None


def period_readings(session: Session, customer_id: int, period_start: date, period_end: date) -> PeriodReadings:
    """The readings the period's energy is computed from (active total, each meter on site)."""
    if period_end < period_start:
        raise ValueError(f"period_end: {period_end} is before period_start {period_start}")
    meters = session.scalars(
        select(Meter).where(Meter.customer_id == customer_id, Meter.installed_on <= period_end,
                            or_(Meter.removed_on.is_(None), Meter.removed_on >= period_start))
        .order_by(Meter.installed_on, Meter.id)
    ).all()
    opening: list[BoundaryReading] = []
    closing: list[BoundaryReading] = []
    for meter in meters:
        # The installation reading is the baseline of a meter installed during the period.
        opens_by = max(period_start - ONE_DAY, meter.installed_on)
        first = _last_reading(session, meter, opens_by - OPENING_LOOKBACK, opens_by)
        closes_by = min(period_end, meter.removed_on) if meter.removed_on else period_end
        last = _last_reading(session, meter, first.day if first else opens_by, closes_by)
        opening += [first] if first else []
        closing += [last] if last else []
    return PeriodReadings(period_start, period_end, tuple(opening), tuple(closing))
