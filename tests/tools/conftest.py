"""Tools test fixtures: a database migrated by both chains (billing, then tools), on SQLite and
on the real PostgreSQL server of `tests/billing/conftest.py`, plus a clock and a data builder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing_core.db import make_engine
from billing_core.migrate import upgrade as upgrade_billing
from tests.billing.conftest import empty_database_url, postgres_server  # noqa: F401  (fixtures)
from tools.migrate import upgrade as upgrade_tools


@pytest.fixture
def database_url(empty_database_url: str) -> str:  # noqa: F811
    """A new database with billing's and the tools' schema, migrated as in production."""
    upgrade_billing(empty_database_url)
    upgrade_tools(empty_database_url)
    return empty_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
