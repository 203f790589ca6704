"""Bulk loading of a month's meter readings from the CSV a meter-data system exports (抄表数据导入).

The file has a header row and one row per meter, day and register::

    asset_no,date,register,value
    M0000000001,2026-07-01,active_total,1012.903

`register` is a `ReadingRegister` value (active_total, critical_peak, peak, flat, valley,
reactive_total, max_demand); `value` is the end-of-day register value (日冻结示数), at most three
decimals. The file is streamed in batches, so a province's month never sits in memory at once.

Meter-data systems also export the 24-point daily curve (24点示数): `p01` … `p24` in place of
`value`, the register's value at 01:00 … 24:00::

    asset_no,date,register,p01,p02,…,p24
    M0000000001,2026-07-01,active_total,1000.112,1000.305,…,1012.903

Billing needs the end-of-day value, which is the 24:00 point (`p24`); the other points are checked
(numbers, and a cumulative register never falling within the day) and not stored. A point left
empty (a missed hourly read) is allowed; an empty `p24` is not.

Every row is checked before anything is written, and a bad row never stops the good ones: it
goes to a rejects CSV with its line number and the reason, so the meter-data team can fix and
resend just those rows. Reasons: unknown meter, bad date, unknown register, non-numeric or
negative value, a duplicate of a row already in the file, a value that disagrees with the one
already stored for that day, and a cumulative register going backwards — against the stored
reading before it (or after it) or against the file's own rows. A row identical to a stored one
is counted as already loaded, so re-running a file (after a crash, or by mistake) is idempotent.

Good rows go in with `bulk_insert` (COPY on PostgreSQL, one executemany on SQLite); each batch
is committed on its own, so a crash loses at most the batch in flight and a re-run finishes it.
"""

from __future__ import annotations

import csv
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from billing_core.db.bulk import bulk_insert
from billing_core.db.models import Meter, Reading, ReadingRegister, ReadingSource
from billing_core.errors import BillingError

COLUMNS = ("asset_no", "date", "register", "value")
POINT_COLUMNS = tuple(f"p{hour:02d}" for hour in range(1, 25))  # the 24-point export: 01:00 … 24:00
REJECT_COLUMNS = ("line", *COLUMNS, "reason")
BATCH_ROWS = 20_000
IN_CHUNK = 5_000  # meter ids per IN (...) query
KWH_STEP = Decimal("0.001")
MAX_VALUE = Decimal("10") ** 13  # Numeric(16, 3): 13 integer digits
_REGISTERS = {r.value: r for r in ReadingRegister}

Key = tuple[int, ReadingRegister]  # (meter id, register)


class ReadingsFileError(BillingError):
    """The file as a whole cannot be read (missing, no header, a missing column): nothing loaded."""


@dataclass
class LoadResult:
    """What a load did; `rejects` holds (line, raw row, reason) of every refused row."""

    rows: int = 0
    loaded: int = 0
    already_loaded: int = 0
    rejects: list[tuple[int, list[str], str]] = field(default_factory=list)

    def summary(self) -> str:
        """For the operator, in Chinese."""
        return (f"读取 {self.rows} 行：入库 {self.loaded} 行，已入库跳过 {self.already_loaded} 行，"
                f"退回 {len(self.rejects)} 行。")


@dataclass
class _Row:
    line: int
    raw: list[str]
    asset_no: str
    day: date
    register: ReadingRegister
    value: Decimal


def _parse(line: int, raw: list[str], day_cache: dict[str, date]) -> _Row | str:
    """The row's fields, or why it is refused (every reason in Chinese, naming the field)."""
    if len(raw) != len(COLUMNS):
        return f"列数应为 {len(COLUMNS)}，实际 {len(raw)}"
    asset_no, day_text, register_text, value_text = (part.strip() for part in raw)
    if not asset_no:
        return "asset_no: 表计资产编号为空"
    day = day_cache.get(day_text)
    if day is None:
        try:
            if len(day_text) != 10:
                raise ValueError
            day = date.fromisoformat(day_text)
        except ValueError:
            return f"date: {day_text!r} 不是有效日期（YYYY-MM-DD）"
        day_cache[day_text] = day
    register = _REGISTERS.get(register_text)
    if register is None:
        return f"register: {register_text!r} 不是有效的示数类型，可选：{'、'.join(_REGISTERS)}"
    try:
        value = Decimal(value_text)
    except InvalidOperation:
        return f"value: {value_text!r} 不是有效的数字"
    if not value.is_finite():
        return f"value: {value_text!r} 不是有效的数字"
    if value < 0:
        return f"value: {value_text} 示数不能为负"
    if value >= MAX_VALUE:
        return f"value: {value_text} 超出示数范围"
    if value != value.quantize(KWH_STEP):
        return f"value: {value_text} 超过三位小数"
    return _Row(line, raw, asset_no, day, register, value)


class _Known:
    """Per meter and register, the readings known so far (stored around the batch + accepted), by day."""

    def __init__(self) -> None:
        self.days: dict[Key, list[date]] = defaultdict(list)
        self.values: dict[Key, dict[date, Decimal]] = defaultdict(dict)

    def add(self, key: Key, day: date, value: Decimal) -> None:
        values = self.values[key]
        if day in values:
            return
        days = self.days[key]
        days.insert(bisect_left(days, day), day)
        values[day] = value

    def neighbours(self, key: Key, day: date) -> tuple[tuple[date, Decimal] | None, tuple[date, Decimal] | None]:
        days = self.days.get(key, [])
        values = self.values.get(key, {})
        index = bisect_left(days, day)
        before = (days[index - 1], values[days[index - 1]]) if index > 0 else None
        after_index = index + 1 if index < len(days) and days[index] == day else index
        after = (days[after_index], values[days[after_index]]) if after_index < len(days) else None
        return before, after


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _stored(session: Session, meter_ids: list[int], first: date, last: date) -> _Known:
    """The stored readings of `meter_ids` from `first` to `last`, plus per register the nearest
    one before `first` and after `last` (what a batch's rows must be consistent with)."""
    known = _Known()
    for ids in _chunks(meter_ids, IN_CHUNK):
        in_window = select(Reading.meter_id, Reading.register, Reading.read_date, Reading.value).where(
            Reading.meter_id.in_(ids), Reading.read_date >= first, Reading.read_date <= last)
        edges = []
        for bound, op in ((func.max(Reading.read_date), Reading.read_date < first),
                          (func.min(Reading.read_date), Reading.read_date > last)):
            edge = (select(Reading.meter_id, Reading.register, bound.label("day"))
                    .where(Reading.meter_id.in_(ids), op).group_by(Reading.meter_id, Reading.register)
                    .subquery())
            edges.append(
                select(Reading.meter_id, Reading.register, Reading.read_date, Reading.value).join(
                    edge, and_(edge.c.meter_id == Reading.meter_id, edge.c.register == Reading.register,
                               edge.c.day == Reading.read_date)))
        for query in (in_window, *edges):
            for meter_id, register, day, value in session.execute(query):
                known.add((meter_id, register), day, value)
    return known


def _meter_ids(session: Session, asset_nos: Iterable[str], cache: dict[str, int]) -> None:
    """Look up the meters of `asset_nos` not yet in `cache` (unknown ones stay absent)."""
    todo = sorted({a for a in asset_nos if a not in cache})
    for chunk in _chunks(todo, IN_CHUNK):
        cache.update(session.execute(select(Meter.asset_no, Meter.id).where(Meter.asset_no.in_(chunk))).all())


def _load_batch(session: Session, batch: list[_Row], meters: dict[str, int], result: LoadResult) -> None:
    _meter_ids(session, (row.asset_no for row in batch), meters)
    located = []
    for row in batch:
        meter_id = meters.get(row.asset_no)
        if meter_id is None:
            result.rejects.append((row.line, row.raw, f"asset_no: 未知表计 {row.asset_no}"))
        else:
            located.append((meter_id, row))
    if not located:
        return
    first = min(row.day for _, row in located)
    last = max(row.day for _, row in located)
    known = _stored(session, sorted({m for m, _ in located}), first, last)
    stored_keys = {(key, day) for key, values in known.values.items() for day in values}
    # Rows of this batch loaded or found already stored → their line. A duplicate in another batch
    # meets the stored copy instead (already loaded, or refused if its value differs).
    seen_at: dict[tuple[Key, date], int] = {}
    inserts: list[tuple[int, date, str, Decimal, str]] = []
    for meter_id, row in located:
        key: Key = (meter_id, row.register)
        slot = (key, row.day)
        if slot in seen_at:
            result.rejects.append((row.line, row.raw, f"重复：与第 {seen_at[slot]} 行同一表计、日期、示数类型"))
            continue
        if slot in stored_keys:
            stored_value = known.values[key][row.day]
            if stored_value == row.value:
                result.already_loaded += 1
                seen_at[slot] = row.line
            else:
                result.rejects.append((row.line, row.raw, f"value: 与已入库示数 {stored_value} 不一致"))
            continue
        if row.register is not ReadingRegister.MAX_DEMAND:  # a level, not a cumulative register
            before, after = known.neighbours(key, row.day)
            if before is not None and row.value < before[1]:
                result.rejects.append((row.line, row.raw,
                                       f"value: 示数倒走，低于 {before[0].isoformat()} 的示数 {before[1]}"))
                continue
            if after is not None and row.value > after[1]:
                result.rejects.append((row.line, row.raw,
                                       f"value: 示数倒走，高于其后 {after[0].isoformat()} 的示数 {after[1]}"))
                continue
        known.add(key, row.day, row.value)
        seen_at[slot] = row.line
        inserts.append((meter_id, row.day, row.register, row.value, ReadingSource.DAILY))
    if inserts:
        bulk_insert(session, Reading.__table__, inserts, ("meter_id", "read_date", "register", "value", "source"))
        result.loaded += len(inserts)


def _points_value(register_text: str, points: list[str]) -> str | tuple[str]:
    """A 24-point row's end-of-day value (as text, checked later like any value), or why it is refused."""
    cumulative = register_text.strip() != ReadingRegister.MAX_DEMAND.value
    last: tuple[str, Decimal] | None = None
    for name, text in zip(POINT_COLUMNS, points, strict=True):
        text = text.strip()
        if not text:
            if name == POINT_COLUMNS[-1]:
                return (f"{name}: 24:00 示数为空，无法得到日冻结示数",)
            continue
        try:
            value = Decimal(text)
        except InvalidOperation:
            return (f"{name}: {text!r} 不是有效的数字",)
        if not value.is_finite():
            return (f"{name}: {text!r} 不是有效的数字",)
        if cumulative and last is not None and value < last[1]:
            return (f"{name}: 示数倒走，低于同日 {last[0]} 的示数 {last[1]}",)
        last = (name, value)
    return points[-1].strip()


def _reader(stream: TextIO, name: str) -> Iterator[tuple[int, list[str], str | None]]:
    """(line, the row as `COLUMNS`, why it is refused already or None) for each data row."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise ReadingsFileError(f"{name}: 文件为空，缺少表头 {','.join(COLUMNS)}")
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    curve = "value" not in names and all(p in names for p in POINT_COLUMNS)
    wanted = (*COLUMNS[:3], *POINT_COLUMNS) if curve else COLUMNS
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ReadingsFileError(f"{name}: 表头缺少列 {','.join(missing)}"
                                f"（应为 {','.join(COLUMNS)}，或 24 点格式 asset_no,date,register,p01…p24）")
    order = [names.index(c) for c in wanted]
    for raw in reader:
        if not raw or (len(raw) == 1 and not raw[0].strip()):
            continue  # blank line
        if len(raw) != len(names):
            yield reader.line_num, raw, f"列数应为 {len(names)}，实际 {len(raw)}"
            continue
        row = [raw[i] for i in order]
        if not curve:
            yield reader.line_num, row, None
            continue
        value = _points_value(row[2], row[3:])
        if isinstance(value, tuple):
            yield reader.line_num, [*row[:3], row[-1]], value[0]
        else:
            yield reader.line_num, [*row[:3], value], None


def load_readings(
    session: Session, path: Path, *, batch_rows: int = BATCH_ROWS, commit: bool = True,
) -> LoadResult:
    """Load the readings CSV at `path`; bad rows are returned in `rejects`, good ones stored.

    With `commit` each batch is committed as it is stored (a re-run resumes after a crash);
    without it the caller's transaction holds everything.
    """
    result = LoadResult()
    meters: dict[str, int] = {}
    day_cache: dict[str, date] = {}
    try:
        stream = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ReadingsFileError(f"{path}: 无法读取（{exc.strerror or exc}）") from exc
    with stream:
        batch: list[_Row] = []
        for line, raw, refused in _reader(stream, str(path)):
            result.rows += 1
            parsed = refused if refused is not None else _parse(line, raw, day_cache)
            if isinstance(parsed, str):
                result.rejects.append((line, raw, parsed))
                continue
            batch.append(parsed)
            if len(batch) >= batch_rows:
                _load_batch(session, batch, meters, result)
                batch = []
                if commit:
                    session.commit()
        if batch:
            _load_batch(session, batch, meters, result)
        if commit:
            session.commit()
    result.rejects.sort(key=lambda item: item[0])
    return result


def write_rejects(path: Path, result: LoadResult) -> None:
    """The refused rows as CSV (line, the row's fields, reason), for the meter-data team to fix."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(REJECT_COLUMNS)
        for line, raw, reason in result.rejects:
            fields = (list(raw) + [""] * len(COLUMNS))[: len(COLUMNS)]
            writer.writerow([line, *fields, reason])
