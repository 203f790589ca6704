"""Billing database fixtures: every DB test runs on SQLite and on a real PostgreSQL server.

`postgres_server` (session) starts one throw-away cluster for the whole run; each test gets a
fresh database on it (or a fresh SQLite file), so tests never see each other's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade
from tests.servers.postgres import PostgresServer, postgres_server as start_postgres

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the session (fails, never skips, without binaries)."""
    with start_postgres() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'billing.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A new database migrated to the latest billing schema (through Alembic, as in production)."""
    upgrade(empty_database_url)
    return empty_database_url


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """A session on a migrated database; the engine is disposed afterwards."""
    engine = make_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()
