"""The billing database: one declarative `Base`, the engine and sessions.

Every billing table (and, through their own metadata, no upper layer's) hangs off `Base`, so
Alembic sees one schema. SQLite is the zero-setup default; PostgreSQL is reached with a
``postgresql+psycopg://`` URL. Both must behave the same, which is why timestamps go through
`UtcDateTime` (SQLite forgets time zones) and constraint names follow a fixed convention
(SQLite can only alter tables by copying them, which needs named constraints).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from billing_core.settings import database_url

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps the zone, SQLite returns naive values; without this, code comparing
    `paid_at` with `datetime.now(UTC)` would work on one backend and crash on the other.
    Naive datetimes are refused on the way in, because their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware value (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the only kind the database accepts)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The declarative base of every billing table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores foreign keys unless asked, per connection; WAL lets readers run while the
    # billing cycle writes. busy_timeout waits for a writer instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database; it only lets the last commits before a power
    # cut roll back, and it saves an fsync per commit (~13 ms of every audited tool call here).
    # Production runs on PostgreSQL; SQLite is the embedded default.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """A new engine for `url` (default: `settings.database_url()`), SQLite pragmas applied."""
    url = url or database_url()
    if not url.startswith("sqlite"):
        # A pooled connection the server closed (restart, pg_terminate_backend, a proxy's idle
        # cut) is replaced at checkout instead of failing the next request with it.
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: the configured database), created once per URL.

    The URL is resolved before the cache, so changing POWERDESK_DATABASE_URL takes effect.
    """
    return _cached_engine(url or database_url())


@lru_cache(maxsize=8)
def _cached_engine(url: str) -> Engine:  # engines own connection pools: one per URL
    return make_engine(url)


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A session factory bound to the engine of `url` (default: the configured database)."""
    return _cached_session_factory(url or database_url())


@lru_cache(maxsize=8)
def _cached_session_factory(url: str) -> sessionmaker[Session]:
    # A sessionmaker builds a Session subclass when created: one per URL, not one per request.
    return sessionmaker(bind=_cached_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A unit of work: commit when the block succeeds, roll back (and re-raise) when it fails."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
