"""Channel test fixtures: a migrated, seeded database, the agent, and the app built around it.

The database is the session's default (SQLite under the per-session POWERDESK_VAR_DIR), migrated
through every layer's Alembic chain and seeded with a small demo utility, exactly what
`make run` does with more customers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient

from billing_core.db import session_scope
from billing_core.db_cli import migration_chains
from billing_core.demo import is_empty, seed_demo
from billing_core.settings import database_url
from channels.app import create_app
from channels.settings import ChannelSettings

DEMO_CUSTOMERS = 40
STAFF_TOKEN = "staff-test-token-0001"


@pytest.fixture(scope="session")
def seeded_database() -> str:
    url = database_url()
    for _name, config in migration_chains(url):
        command.upgrade(config, "head")
    with session_scope() as session:
        if is_empty(session):
            seed_demo(session, customers=DEMO_CUSTOMERS, seed=7)
    return url


@pytest.fixture(scope="session")
def agent(seeded_database: str) -> Any:
    from agent.agent import Agent

    return Agent()


def make_settings(**overrides: Any) -> ChannelSettings:
    base: dict[str, Any] = {"staff_tokens": frozenset({STAFF_TOKEN}), "wechat_token": "wxtoken",
                            "wechat_app_id": "wx1234567890abcdef", "rate_limit_per_minute": 1000}
    base.update(overrides)
    return ChannelSettings(**base)


@pytest.fixture
def client(agent: Any) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(), agent)) as test_client:
        yield test_client
