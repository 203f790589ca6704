"""The one fast bulk insert of the billing core (the cycle, late fees, work orders, the demo seed).

SQLAlchemy's executemany builds and processes a parameter dict per row (~10 µs a row), which
costs more than computing the bill itself at 100,000 bills a month and most of a minute for a
million demo readings. Here each column's bind processor (the dialect's own conversion: Decimal →
float on SQLite, aware datetime → UTC, enum → its name, list → JSON) is looked up once through
the public `TypeEngine.dialect_impl(...).bind_processor(...)` and applied column by column, so
rows read back exactly as the ORM writes them; PostgreSQL then gets one COPY, other databases one
executemany of the compiled INSERT.

Every column of the table except an autoincrement key must be given: no Python-side defaults run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Date, Enum, Table, any_, bindparam, insert
from sqlalchemy.orm import InstrumentedAttribute, Session


def bulk_insert(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    columns: Sequence[str] | None = None,
) -> None:
    """Insert `rows` into `table` in the session's transaction.

    `rows` are dicts with the same keys, or tuples in the order of `columns` (cheaper in the
    million: the demo's readings).
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = list(columns) if columns is not None else list(rows[0].keys())  # type: ignore[union-attr]
    missing = [
        c.name for c in table.columns
        if c.name not in names and not (c.primary_key and c.autoincrement in (True, "auto"))
    ]
    if missing:
        raise ValueError(f"bulk_insert into {table.name}: rows lack columns {missing}")
    by_column: list[list[Any]] = []
    for position, name in enumerate(names):
        column_type = table.columns[name].type
        processor: Callable[[Any], Any] | None = column_type.dialect_impl(dialect).bind_processor(dialect)
        key: Any = position if columns is not None else name
        raw = [row[key] for row in rows]  # type: ignore[index]
        if processor is None:
            by_column.append(raw)
            continue
        if isinstance(column_type, Date | Enum):
            processor = lru_cache(maxsize=8192)(processor)  # few distinct days and enum values
        by_column.append([None if value is None else processor(value) for value in raw])
    values = list(zip(*by_column, strict=True))
    if dialect.name == "postgresql":
        quote = dialect.identifier_preparer
        column_list = ", ".join(quote.quote(name) for name in names)
        cursor = connection.connection.cursor()
        try:
            with cursor.copy(f"COPY {quote.format_table(table)} ({column_list}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in values:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    if compiled.positional:
        index = {name: i for i, name in enumerate(names)}
        order = [index[name] for name in compiled.positiontup or ()]
        params: list[Any] = [tuple(row[i] for i in order) for row in values]
    else:
        params = [dict(zip(names, row, strict=True)) for row in values]
    connection.exec_driver_sql(str(compiled), params)


def among(session: Session, column: InstrumentedAttribute[Any] | Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN (ids)`; on PostgreSQL `column = ANY(:ids)`, the ids as one array parameter.

    A chunk's IN list is thousands of bound values that psycopg splits out of the query text
    on every execution (it caches only short statements): a measurable share of a cycle
    worker's CPU. The array is one parameter and the same index scan.
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(column.type)))
    return column.in_(ids)
