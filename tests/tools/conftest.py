"""Tools test fixtures: a database migrated by both chains (billing, then tools), on SQLite and
on the real PostgreSQL server of `tests/billing/conftest.py`, plus a clock and a data builder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade as upgrade_billing
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


# --- a small utility: three customers with bills computed by the billing core ----------------

from dataclasses import dataclass  # noqa: E402
from datetime import date  # noqa: E402
from decimal import Decimal  # noqa: E402

from billing_core.bill_types import BasicChargeMode, CustomerCategory  # noqa: E402
from billing_core.db.models import BillStatus, PaymentChannel  # noqa: E402
from tests.tools.factories import NOW, add_bill, add_customer, pay  # noqa: E402
from tools.context import ToolContext  # noqa: E402

ACCOUNT_A = "440100000001"
ACCOUNT_B = "440100000002"
ACCOUNT_C = "440100000003"


@dataclass
class World:
    sessions: sessionmaker[Session]
    bill_ids: dict[str, int]  # "A:2026-05" -> bill id

    def ctx(self, conversation_id: str = "conv-1", channel: str = "web", identity: str | None = None,
            **kw: object) -> ToolContext:
        kw.setdefault("clock", lambda: NOW)
        return ToolContext(conversation_id=conversation_id, channel=channel, session_factory=self.sessions,
                           channel_identity=identity, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    return build_world(sessions)


def build_world(sessions: sessionmaker[Session]) -> World:
    """Customers A and B (residential) and C (two-part C&I with PF), bills by `compute_bill`."""
    ids: dict[str, int] = {}
    with sessions() as session:
        a = add_customer(session, ACCOUNT_A, openid="openid-A")
        ids["A:2025-05"] = add_bill(session, a, "2025-05", "350", status=BillStatus.PAID,
                                    due_date=date(2025, 6, 15)).id
        april = add_bill(session, a, "2026-04", "300", due_date=date(2026, 5, 15))
        pay(session, april, channel=PaymentChannel.WECHAT_PAY)
        ids["A:2026-04"] = april.id
        ids["A:2026-05"] = add_bill(session, a, "2026-05", "480", back_charge_kwh="20",
                                    due_date=date(2026, 6, 15)).id
        b = add_customer(session, ACCOUNT_B, name="林美玲", phone="13900139000", id_last4="5678",
                         address="广州市越秀区解放北路 968 号")
        ids["B:2026-05"] = add_bill(session, b, "2026-05", "150", due_date=date(2026, 6, 15)).id
        c = add_customer(session, ACCOUNT_C, name="广州某某制造有限公司", phone="02083830000", id_last4=None,
                         address="广州市海珠区昌岗中路 284 号", category=CustomerCategory.CI_TWO_PART,
                         voltage_level="1-10kV", basic_charge_mode=BasicChargeMode.CAPACITY,
                         capacity_kva=Decimal("630"), pf_standard=Decimal("0.90"))
        ids["C:2026-04"] = add_bill(session, c, "2026-04", "100000", reactive_kvarh="30000",
                                    due_date=date(2026, 5, 15)).id
        ids["C:2026-05"] = add_bill(session, c, "2026-05", "110000", reactive_kvarh="70000",
                                    due_date=date(2026, 7, 15)).id
        session.commit()
    return World(sessions, ids)
