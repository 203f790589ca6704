"""Billing periods: a calendar month written 'YYYY-MM', inclusive of its first and last day."""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Iterator
from datetime import date, timedelta

from billing_core.errors import InvalidRequestError

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_bounds(period: str, field: str = "period") -> tuple[date, date]:
    """First and last day of the month `period` ('2026-10'); a clear error naming `field` otherwise."""
    match = _PERIOD.match(period.strip()) if isinstance(period, str) else None
    if match is None:
        raise InvalidRequestError(f"{period!r} is not a month written YYYY-MM", field=field)
    year, month = int(match.group(1)), int(match.group(2))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def period_of(day: date) -> str:
    """The period a day belongs to: date(2026, 10, 5) → '2026-10'."""
    return f"{day.year:04d}-{day.month:02d}"


def periods_between(first: str, last: str) -> Iterator[str]:
    """Every period from `first` to `last`, both included, in order."""
    start, _ = period_bounds(first, "first")
    end, _ = period_bounds(last, "last")
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        yield f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@functools.lru_cache(maxsize=256)
def days_between(first: date, last: date) -> tuple[date, ...]:
    """Every day from `first` to `last`, both included; cached: a cycle asks for the same period
    once per customer (and the read step for each meter's stretch of it)."""
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))
