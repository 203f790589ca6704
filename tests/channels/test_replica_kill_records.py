"""A replica SIGKILLed under concurrent conversations: every answered message is recorded exactly once.

The same property as `benchmarks/bench_chat_replicas.py --kill-replica`, small and deterministic:
four conversations through nginx (docs/deploy/nginx.conf) to two replicas, each message sent with a
message id and resent like the page (channels/web/chat.js) on a 5xx or a cut connection. Replica r1
is killed in the middle of conversation A's second turn — while r1 holds A's conversation lock in
Redis (frozen with SIGSTOP the moment the lock appears, then SIGKILLed) — with the other three
conversations' second turns on their way; the later turns are sent once r1 is dead. Afterwards
PostgreSQL must hold one conversation record per conversation and one turn record per message id
(nothing lost, nothing doubled), in the order sent. Reuses test_nginx_replicas.py's cluster (a
second one for this module: its replicas' start-up is most of the time). A's resend is answered
once the lock r1 held expires (agent/state.py LOCK_TIMEOUT_SECONDS, 30 s): the test's own time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest
import redis
from sqlalchemy import select

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import make_engine
from tests.channels.serve_process import web_conversation
from tests.channels.test_nginx_replicas import (  # noqa: F401  (cluster, customer: the fixtures)
    REPLICA, Cluster, _next_turn_lands_on, _say_like_the_page, cluster, customer)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CONVERSATIONS = 4


def _recorded(cluster: Cluster, conversation_ids: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(conversation ids with a record, one per record; message ids of the turns per conversation)."""
    engine = make_engine(cluster.env["POWERDESK_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            records = list(connection.execute(select(ConversationRecord.conversation_id).where(
                ConversationRecord.conversation_id.in_(conversation_ids))).scalars())
            turns: dict[str, list[str]] = {cid: [] for cid in conversation_ids}
            for cid, message_id in connection.execute(
                    select(ConversationRecord.conversation_id, TurnRecord.message_id).join(ConversationRecord)
                    .where(ConversationRecord.conversation_id.in_(conversation_ids)).order_by(TurnRecord.id)):
                turns[cid].append(message_id)
            return records, turns
    finally:
        engine.dispose()


def _wait_for_key(client: redis.Redis, key: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not client.exists(key):
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} never appeared: the turn did not start")
        time.sleep(0.001)


def test_a_replica_killed_under_load_loses_and_doubles_no_record(  # noqa: F811
        cluster: Cluster, customer: dict[str, Any]) -> None:
    nginx = cluster.nginx
    assert nginx is not None
    texts = [f"户号{customer['account']}，手机号后四位{customer['last4']}", f"查一下{customer['period']}的电费",
             "电费怎么交", f"{customer['period']}的电费是多少"]
    conversations = [web_conversation(nginx.url) for _ in range(CONVERSATIONS)]
    answers: dict[tuple[str, int], tuple[int, str, str]] = {}
    failures: list[BaseException] = []
    victim_go, others_go, killed = threading.Event(), threading.Event(), threading.Event()

    def say(cid: str, headers: dict[str, str], n: int) -> None:
        response = _say_like_the_page(nginx, cid, headers, texts[n], f"m-{cid[:8]}-{n}")
        answers[(cid, n)] = (response.status_code, response.headers.get(REPLICA, ""), response.text)

    def client(cid: str, headers: dict[str, str], go: threading.Event) -> None:
        try:
            assert go.wait(60)
            say(cid, headers, 1)
            assert killed.wait(60)  # the later turns: only r2 is left to answer them
            for n in range(2, len(texts)):
                say(cid, headers, n)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    for cid, headers in conversations:  # the first turns, before anything happens
        say(cid, headers, 0)
    threads = [threading.Thread(target=client, args=(cid, headers, victim_go if i == 0 else others_go))
               for i, (cid, headers) in enumerate(conversations)]
    for thread in threads:
        thread.start()
    victim, victim_cid = cluster.replicas["r1"], conversations[0][0]
    store = redis.Redis.from_url(cluster.redis.url)
    try:
        _next_turn_lands_on(cluster, "r1")
        victim_go.set()  # A's second turn goes to r1 ...
        _wait_for_key(store, f"powerdesk:conv:{victim_cid}:lock", 30)  # ... which is running it
        others_go.set()
        os.kill(victim.process.pid, signal.SIGSTOP)  # frozen holding A's lock, mid-turn
        time.sleep(0.02)  # the other second turns reach nginx (r1's share: sent, never answered)
        victim.kill()
        killed.set()
        for thread in threads:
            thread.join(120)
    finally:
        killed.set()
        victim_go.set()
        others_go.set()
        cluster.stopped("r1")
    assert not failures, failures
    assert len(answers) == CONVERSATIONS * len(texts)
    assert all(status == 200 for status, _, _ in answers.values()), answers
    status, replica, text = answers[(victim_cid, 1)]
    assert replica == "r2" and customer["amount"] in text  # cut on r1, resent, answered by r2
    assert {replica for (_, n), (_, replica, _) in answers.items() if n >= 2} == {"r2"}
    ids = [cid for cid, _ in conversations]
    records, turns = _recorded(cluster, ids)
    assert sorted(records) == sorted(ids)  # one conversation record each, none doubled
    for cid in ids:  # one turn record per message id, in the order sent: nothing lost or doubled
        assert turns[cid] == [f"m-{cid[:8]}-{n}" for n in range(len(texts))], (cid, Counter(turns[cid]))
