"""A small seeded demo utility shared by the insights tests (40 customers, both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from billing_core.db.engine import make_engine
from billing_core.demo.seed import SeedSummary, seed_demo

N = 40


@pytest.fixture
def demo(database_url: str, tmp_path: Path) -> Iterator[tuple[Session, SeedSummary]]:
    engine = make_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        summary = seed_demo(session, customers=N, seed=7, statement_dir=tmp_path / "statement")
        session.commit()
        yield session, summary
    engine.dispose()
