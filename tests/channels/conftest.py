"""Channel test fixtures: a migrated, seeded database, the agent, and the app built around it.

The database is the package's own SQLite file (POWERDESK_DATABASE_URL while these tests run), migrated
through every layer's Alembic chain and seeded with a small demo utility, exactly what
`make run` does with more customers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select

from billing_core.db.engine import session_scope
from billing_core.db.schema import migration_chains
from billing_core.demo.seed import is_empty, seed_demo
from billing_core.db.models import Bill, Customer
from channels.app import create_app
from channels.ivr_auth import signed_headers
from channels.settings import ChannelSettings

DEMO_CUSTOMERS = 40
STAFF_TOKEN = "staff-test-token-0001"
IVR_SECRET = "ivr-platform-test-secret-0001"


@pytest.fixture(scope="package")
def seeded_database() -> Iterator[str]:
    """The channel tests' own database file, set as POWERDESK_DATABASE_URL while they run (and
    inherited by the `powerdesk serve` processes they start), so no other area's rows mix in."""
    directory = Path(tempfile.mkdtemp(prefix="powerdesk-channels-db-"))
    url = f"sqlite:///{directory / 'channels.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERDESK_DATABASE_URL", url)
        for _name, config in migration_chains(url):
            command.upgrade(config, "head")
        with session_scope() as session:
            if is_empty(session):
                seed_demo(session, customers=DEMO_CUSTOMERS, seed=7, statement_dir=directory)
        yield url
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="package")
def agent(seeded_database: str) -> Any:
    from agent.agent import Agent

    built = Agent()
    built.knowledge().search("电费怎么交")  # warm, as `powerdesk serve` does: WeChat's 4.5 s deadline
    return built


def make_settings(**overrides: Any) -> ChannelSettings:
    base: dict[str, Any] = {"staff_tokens": frozenset({STAFF_TOKEN}), "wechat_token": "wxtoken",
                            "wechat_app_id": "wx1234567890abcdef", "rate_limit_per_minute": 1000,
                            "ivr_secrets": (IVR_SECRET,)}
    base.update(overrides)
    return ChannelSettings(**base)


def ivr_post(client: Any, payload: dict[str, Any], secret: str = IVR_SECRET) -> Any:
    """POST /ivr/turn signed as the telephony platform signs it (client: TestClient or httpx.Client)."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post("/ivr/turn", content=body, headers=signed_headers(secret, body))


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a web-chat SSE body."""
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def new_web_conversation(client: Any) -> str:
    """Start a web conversation; its token stays in the client's cookie jar."""
    response = client.post("/api/chat/conversations")
    assert response.status_code == 201, response.text
    return response.json()["conversation_id"]


@pytest.fixture
def client(agent: Any) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(), agent)) as test_client:
        yield test_client


@dataclass(frozen=True)
class DemoCustomer:
    account_no: str
    last4: str
    period: str  # a billed period of this customer
    amount: Decimal  # that bill's amount as the billing core computed it

    @property
    def period_words(self) -> str:
        year, month = self.period.split("-")
        return f"{int(year)}年{int(month)}月"

    @property
    def amount_text(self) -> str:
        return format(self.amount, "f")


def demo_customers(count: int = 5) -> list[DemoCustomer]:
    """Residential demo customers with a phone on file and their latest bill."""
    found: list[DemoCustomer] = []
    with session_scope() as session:
        customers = session.scalars(select(Customer).where(Customer.phone.is_not(None))
                                    .order_by(Customer.account_no)).all()
        for customer in customers:
            bill = session.scalars(select(Bill).where(Bill.customer_id == customer.id, Bill.amount > 0)
                                   .order_by(Bill.period.desc())).first()
            if bill is not None and customer.category.value == "residential":
                found.append(DemoCustomer(customer.account_no, customer.phone[-4:], bill.period, bill.amount))
            if len(found) >= count:
                break
    return found


@pytest.fixture(scope="package")
def demo_customer(seeded_database: str) -> DemoCustomer:
    return demo_customers(1)[0]
