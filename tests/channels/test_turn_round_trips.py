"""Redis round trips of one web-chat turn through the real app and agent: the staff-hold check
runs in `Agent.handle` on the state its lock already read, so a turn reads the state once.

Counted as in tests/agent/test_redis_state_round_trips.py (every command or pipeline sent on a
redis-py connection). Before the hold check moved into the agent, the channel loaded the state
once more: 4 round trips per turn, 5 with a message id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.agent import Agent
from agent.state import RedisStateStore
from channels.app import create_app
from tests.agent.test_redis_state_round_trips import RoundTrips
from tests.channels.conftest import STAFF_TOKEN, make_settings, new_web_conversation
from tests.servers.redis import RedisServer, redis_server

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


def test_a_web_turn_reads_the_state_once(agent: Any, server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    redis_agent = Agent(sessions=agent.sessions, store=RedisStateStore(server.url, prefix="turn-rt"),
                        brain="local", knowledge=agent.knowledge)
    with TestClient(create_app(make_settings(redis_url=server.url), redis_agent)) as client:
        cid = new_web_conversation(client)

        def say(text: str, message_id: str | None = None) -> dict[str, Any]:
            body = {"text": text} | ({"message_id": message_id} if message_id else {})
            response = client.post(f"/api/chat/conversations/{cid}/messages?stream=false", json=body)
            assert response.status_code == 200, response.text
            return response.json()

        say("你好", "m0")  # connects and loads the scripts once
        trips = RoundTrips(monkeypatch)
        assert say("电费怎么交")["text"]
        assert trips.count == 3  # rate window, lock + read, write + release
        say("电费怎么交", "m1")
        assert trips.count == 3 + 4  # plus the stored-reply lookup

        # Held by staff: still decided on that one read (then the hand-off row, and recording the message).
        staff = {"Authorization": f"Bearer {STAFF_TOKEN}"}
        assert client.post(f"/api/assist/conversations/{cid}/takeover", json={}, headers=staff).status_code == 200
        held = say("还在吗")
        assert held["held_by_staff"] is True
        assert redis_agent.state(cid).history[-1] == {"role": "user", "text": "还在吗"}
