"""With Redis, a conversation survives a process restart (a new Agent) and a Redis restart, and a
message id answered by one process is not answered again by another."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select

from agent.agent import Agent
from agent.models import TurnRecord
from agent.state import RedisStateStore
from tests.agent.world import ACCOUNT_A, World
from tests.servers.redis import RedisServer, redis_server, restart


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.mark.redis
def test_conversation_survives_restarts_and_ids_are_idempotent(world: World, redis: RedisServer,
                                                               make_agent: Callable[..., Agent]) -> None:
    first = make_agent(store=RedisStateStore(redis.url))
    asked = first.handle("r-1", "web", "我想查上个月电费", message_id="m1")
    assert asked.awaiting == "account_no"
    restart(redis)
    second = make_agent(store=RedisStateStore(redis.url))  # another process, after Redis restarted
    assert second.handle("r-1", "web", "我想查上个月电费", message_id="m1") == asked
    assert second.handle("r-1", "web", ACCOUNT_A, message_id="m2").awaiting == "last4"
    reply = first.handle("r-1", "web", "123X", message_id="m3")
    assert str(world.amounts["A:2026-05"]) in reply.text
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TurnRecord)) == 3
