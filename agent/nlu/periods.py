"""Billing months and periods named in a message, resolved against a reference date.

Customers rarely say 「2026年5月」; they say 「上个月」, 「今年五月」, 「5月份」 or 「最近三个月」.
Bills are monthly, so every reference resolves to a calendar month (year, month), or to
"the n latest bills". The reference date is a parameter, never `date.today()`, so that
「上个月」 on 2027-01-03 (December 2026) can be tested and replayed.

Works on digitised text (see `numerals.digitise`): 「今年五月」 arrives as 「今年5月」.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

_RELATIVE_MONTH = re.compile(r"上上个?月|上个?月|(?:这|本|当|今|呢|今个|这一)个?月(?!份?\d)|下个?月")
_RELATIVE_OFFSET = {"上上": -2, "上": -1, "下": 1}
_YEAR_MONTH = re.compile(r"(?<!\d)(\d{4}|\d{2})\s*年\s*(\d{1,2})\s*月份?")
_ISO_MONTH = re.compile(r"(?<![\d.])(\d{4})\s*[-/.]\s*(\d{1,2})(?![\d.]|\s*[-/.]\s*\d)")
_NAMED_YEAR_MONTH = re.compile(r"(今年|去年|前年|明年)\s*(\d{1,2})\s*月份?")
_BARE_MONTH = re.compile(r"(?<![\d年.])(\d{1,2})\s*月份?(?!\d*[日号])")
_RECENT_MONTHS = re.compile(r"(?:最近|近|前|过去|这)\s*(\d{1,2}|半)\s*(?:个月|期|个账期)")
_RECENT_YEAR = re.compile(r"(?:最近|近|过去)\s*(?:1|一|半)\s*年")
_NAMED_YEAR_OFFSET = {"今年": 0, "去年": -1, "前年": -2, "明年": 1}


@dataclass(frozen=True, slots=True)
class MonthMatch:
    """A calendar month found at [start, end) of the digitised text."""

    year: int
    month: int
    start: int
    end: int
    relative: bool = False  # 「这个月」「上个月」: said about time, often not the bill meant


@dataclass(frozen=True, slots=True)
class RecentMatch:
    """「最近3个月」: the n latest bills, found at [start, end)."""

    count: int
    start: int
    end: int


def shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    """(year, month) moved by `delta` months, across year boundaries."""
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _valid(month: int) -> bool:
    return 1 <= month <= 12


def find_months(text: str, today: date) -> Iterator[MonthMatch]:
    """Every month reference, most specific patterns first; later patterns skip claimed text."""
    claimed: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= c_start or start >= c_end for c_start, c_end in claimed)

    found: list[MonthMatch] = []

    def add(year: int, month: int, start: int, end: int, relative: bool = False) -> None:
        if _valid(month) and free(start, end):
            claimed.append((start, end))
            found.append(MonthMatch(year, month, start, end, relative))

    for match in _YEAR_MONTH.finditer(text):
        year = int(match.group(1))
        add(year + 2000 if year < 100 else year, int(match.group(2)), *match.span())
    for match in _ISO_MONTH.finditer(text):
        year = int(match.group(1))
        if 2000 <= year <= 2100:
            add(year, int(match.group(2)), *match.span())
    for match in _NAMED_YEAR_MONTH.finditer(text):
        add(today.year + _NAMED_YEAR_OFFSET[match.group(1)], int(match.group(2)), *match.span())
    for match in _RELATIVE_MONTH.finditer(text):
        word = match.group(0)
        delta = next((d for prefix, d in _RELATIVE_OFFSET.items() if word.startswith(prefix)), 0)
        add(*shift_month(today.year, today.month, delta), *match.span(), relative=True)
    for match in _BARE_MONTH.finditer(text):
        month = int(match.group(1))
        # A bare month is the latest one that has happened: in March, 「5月」 is last May.
        year = today.year if month <= today.month else today.year - 1
        add(year, month, *match.span())
    yield from sorted(found, key=lambda m: m.start)


def find_recent(text: str) -> Iterator[RecentMatch]:
    for match in _RECENT_MONTHS.finditer(text):
        raw = match.group(1)
        count = 6 if raw == "半" else int(raw)
        if 1 <= count <= 36:
            yield RecentMatch(count, *match.span())
    for match in _RECENT_YEAR.finditer(text):
        yield RecentMatch(6 if "半" in match.group(0) else 12, *match.span())
