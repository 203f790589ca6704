"""A small seeded demo utility shared by the insights tests: 40 customers, seeded once per test
module on each backend (SQLite and a real PostgreSQL); each test's changes are rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade
from billing_core.demo.seed import SeedSummary, seed_demo
from tests.billing.conftest import BACKENDS

N = 40


@pytest.fixture(scope="module", params=BACKENDS)
def demo_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[str, SeedSummary]]:
    directory = tmp_path_factory.mktemp("insights")
    if request.param == "sqlite":
        url, server = f"sqlite:///{directory / 'demo.db'}", None
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.create_database()
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        summary = seed_demo(session, customers=N, seed=7, statement_dir=Path(directory) / "statement")
        session.commit()
    engine.dispose()
    yield url, summary
    if server is not None:
        server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def demo(demo_database: tuple[str, SeedSummary]) -> Iterator[tuple[Session, SeedSummary]]:
    url, summary = demo_database
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        yield session, summary
        session.rollback()
    engine.dispose()
