"""Redis stopped and restarted on its append-only file while several customers are chatting.

One `powerdesk serve` on its own PostgreSQL and Redis; each client thread is a different verified
customer sending bill questions as the page does (channels/web/chat.js: a 5xx is resent with the
same message id after Retry-After). Mid-load Redis is stopped, left down, and started again on the
same port and data dir. Every response must be a 200 that names the client's own bill (never
another customer's) or a clear 503 with Retry-After; after the restart every conversation goes on,
still verified; and each message is recorded as exactly one turn, none lost, none doubled.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import make_engine
from tests.channels.serve_process import POWERDESK, ServeProcess, demo_customers, serve_process, web_conversation
from tests.servers.postgres import postgres_server
from tests.servers.redis import RedisServer, redis_server, restart

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CLIENTS = 4
DOWN_SECONDS = 1.5


@dataclass
class Service:
    server: ServeProcess
    redis: RedisServer
    database_url: str


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with postgres_server() as pg, redis_server() as redis:
        env = {"POWERDESK_DATABASE_URL": pg.create_database(), "POWERDESK_REDIS_URL": redis.url,
               "POWERDESK_VAR_DIR": tempfile.mkdtemp(prefix="powerdesk-redis-load-"),
               "POWERDESK_SESSION_SECRET": "redis-restart-secret"}
        full = {**os.environ, **env}
        subprocess.run([str(POWERDESK), "db", "upgrade"], env=full, check=True, capture_output=True)
        subprocess.run([str(POWERDESK), "demo", "seed", "--customers", "20", "--seed", "7"], env=full,
                       check=True, capture_output=True)
        with serve_process(env) as server:
            yield Service(server, redis, env["POWERDESK_DATABASE_URL"])


def _customers(url: str) -> list[dict[str, str]]:
    """Residential customers with a phone and a bill, each bill amount different from the others'."""
    found: list[dict[str, str]] = []
    for customer in demo_customers(url):
        amount = customer["amount"]
        if all(amount not in c["amount"] and c["amount"] not in amount for c in found):
            found.append(customer)
    assert len(found) >= CLIENTS, found
    return found[:CLIENTS]


def _turn_texts(url: str, conversation_id: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(TurnRecord.user_text).join(ConversationRecord).where(
                ConversationRecord.conversation_id == conversation_id).order_by(TurnRecord.id)).scalars())
    finally:
        engine.dispose()


@dataclass
class Client:
    """One customer's conversation, sending like the page and checking every response."""

    base: str
    customer: dict[str, str]
    others: list[str]  # the other customers' amounts: never to appear in this conversation
    cid: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def say(self, text: str, message_id: str) -> dict[str, Any]:
        """Send until answered (at most 60 s): a 503 must be clear, and is resent with the same id."""
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.post(f"{self.base}/api/chat/conversations/{self.cid}/messages?stream=false",
                                      json={"text": text, "message_id": message_id}, headers=self.headers,
                                      timeout=60)
            except httpx.TransportError as exc:  # not expected from one replica: serve stays up
                self.problems.append(f"{message_id}: {exc!r}")
                raise
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                return dict(response.json())
            if response.status_code != 503 or not response.headers.get("retry-after") \
                    or "稍后" not in response.json().get("detail", ""):
                self.problems.append(f"{message_id}: {response.status_code} {response.text[:200]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{message_id} never answered: {self.statuses[-5:]}")
            time.sleep(min(float(response.headers.get("retry-after", "0.5")), 0.5))

    def start(self) -> None:
        self.cid, self.headers = web_conversation(self.base)
        identify = f"户号{self.customer['account']}，手机号后四位{self.customer['last4']}"
        self.say(identify, "m-identify")
        self.sent.append(identify)

    def run(self, stop: threading.Event) -> None:
        try:
            n = 0
            while not stop.is_set() or n < 2:  # at least two turns
                text = f"查一下{self.customer['period']}的电费（第{n}次）"
                reply = self.say(text, f"m-{n:04d}")
                self.sent.append(text)
                self._check(reply, text)
                n += 1
        except BaseException as exc:  # reported by the test, with what this client saw
            self.problems.append(f"{exc!r}")

    def _check(self, reply: dict[str, Any], text: str) -> None:
        words = reply.get("text", "")
        if self.customer["amount"] not in words or reply.get("awaiting") in ("account_no", "last4"):
            self.problems.append(f"{text}: not the verified customer's bill: {words[:120]} {reply.get('awaiting')}")
        for amount in self.others:
            if amount in words:
                self.problems.append(f"{text}: another customer's amount {amount}: {words[:120]}")


def test_redis_restarted_under_chat_load_loses_and_mixes_nothing(service: Service) -> None:
    customers = _customers(service.database_url)
    clients = [Client(service.server.url, c, [o["amount"] for o in customers if o is not c]) for c in customers]
    for client in clients:
        client.start()
    stop = threading.Event()
    threads = [threading.Thread(target=client.run, args=(stop,)) for client in clients]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)  # load running
        service.redis.stop()
        time.sleep(DOWN_SECONDS)  # turns meet a Redis that is down
    finally:
        restart(service.redis)  # same port, same append-only file
        time.sleep(2.0)  # load goes on after the restart
        stop.set()
        for thread in threads:
            thread.join(90)
    assert not any(thread.is_alive() for thread in threads)
    for client in clients:
        assert not client.problems, (client.customer["account"], client.problems)
        assert set(client.statuses) <= {200, 503}
    assert any(503 in client.statuses for client in clients)  # the outage was seen by the load
    for client in clients:  # every conversation goes on after the restart, still verified
        reply = client.say(f"{client.customer['period']}的电费是多少", "m-after")
        client._check(reply, "m-after")
        client.sent.append(f"{client.customer['period']}的电费是多少")
        assert not client.problems, client.problems
        # One turn per message sent: none lost, none doubled by the resends.
        assert _turn_texts(service.database_url, client.cid) == client.sent
