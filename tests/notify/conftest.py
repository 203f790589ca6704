"""Outbox-delivery fixtures: a migrated billing database (SQLite, or the PostgreSQL test server),
rows queued as the billing core queues them, and a worker wired to the local fake providers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from billing_core.bill_types import CustomerCategory
from billing_core.db.engine import session_scope
from billing_core.db.migrate import upgrade
from billing_core.db.models import Customer
from billing_core.db.operations_models import OutboxNotification
from billing_core.operations.notifications import bill_issued_rows
from billing_core.operations.outbox import queue_new
from channels.notify.policy import load_policy
from tests.billing.conftest import postgres_server  # noqa: F401  (fixture)

POLICY = load_policy()
DAYTIME = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: no quiet hours


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    upgrade(url)
    return url


def add_customer(url: str, account_no: str, phone: str | None = "13800138000", openid: str | None = None) -> None:
    with session_scope(url) as session:
        session.add(Customer(account_no=account_no, name="张三", phone=phone, address="测试路1号",
                             category=CustomerCategory.RESIDENTIAL, wechat_openid=openid))


def bill_rows(account_no: str, bill_no: int, channels: dict[str, str]) -> list[dict[str, Any]]:
    """The rows the billing cycle writes for one issued bill (same function, same figures)."""
    return bill_issued_rows(bill_id=bill_no, bill_no=f"GD{bill_no:08d}", account_no=account_no, name="张三",
                            period="2026-11", amount=Decimal("242.55"), total_kwh=Decimal("400"),
                            due_date=date(2026, 12, 20), channels=list(channels), reachable=channels)


def queue_bills(url: str, count: int, channel: str, recipient: str = "{i}", start: int = 1) -> None:
    """`count` bill-issued notices on `channel`, one account each (bill_id left NULL: no bill rows)."""
    rows = []
    for i in range(start, start + count):
        for row in bill_rows(f"4401{i:08d}", i, {channel: recipient.format(i=i)}):
            row["bill_id"] = None
            rows.append(row)
    with session_scope(url) as session:
        queue_new(session, rows)


def rows(url: str) -> list[OutboxNotification]:
    with session_scope(url) as session:
        return list(session.scalars(select(OutboxNotification).order_by(OutboxNotification.id)))


@pytest.fixture
def pg_url(postgres_server: Any) -> Iterator[str]:  # noqa: F811
    url = postgres_server.create_database()
    upgrade(url)
    yield url
    from billing_core.db.engine import get_engine

    get_engine(url).dispose()
    postgres_server.drop_database(url.rsplit("/", 1)[1])
