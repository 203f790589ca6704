"""A replica SIGKILLed under concurrent conversations: every answered message is recorded exactly once.

The same property as `benchmarks/bench_chat_replicas.py --kill-replica`, small: four conversations
through nginx (docs/deploy/nginx.conf) to two replicas, each message sent with a message id and
resent like the page (channels/web/chat.js) on a 5xx or a cut connection; r1 is SIGKILLed while
the second turn of every conversation is in flight, the later turns are sent once it is dead.
Afterwards PostgreSQL must hold one conversation record per conversation and one turn record per
message id (nothing lost, nothing doubled), in the order sent. Reuses test_nginx_replicas.py's
cluster (a second one for this module: ~40 s of replica start-up). A turn cut on r1 is answered
once the lock r1 held expires (agent/state.py LOCK_TIMEOUT_SECONDS, 30 s): the test's own time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import make_engine
from tests.channels.serve_process import web_conversation
from tests.channels.test_nginx_replicas import (  # noqa: F401  (cluster, customer: the fixtures)
    REPLICA, Cluster, _say_like_the_page, cluster, customer)

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


def test_a_replica_killed_under_load_loses_and_doubles_no_record(  # noqa: F811
        cluster: Cluster, customer: dict[str, Any]) -> None:
    nginx = cluster.nginx
    assert nginx is not None
    texts = [f"户号{customer['account']}，手机号后四位{customer['last4']}", f"查一下{customer['period']}的电费",
             "电费怎么交", f"{customer['period']}的电费是多少"]
    conversations = [web_conversation(nginx.url) for _ in range(CONVERSATIONS)]
    second_turn = threading.Barrier(CONVERSATIONS + 1)  # the killer waits with the clients
    killed = threading.Event()
    answers: dict[tuple[str, str], tuple[int, str, str]] = {}
    failures: list[BaseException] = []

    def client(cid: str, headers: dict[str, str]) -> None:
        try:
            for n, text in enumerate(texts):
                if n == 1:
                    second_turn.wait(30)
                elif n == 2:  # the later turns are sent once r1 is dead: only r2 may answer them
                    killed.wait(30)
                message_id = f"m-{cid[:8]}-{n}"
                response = _say_like_the_page(nginx, cid, headers, text, message_id)
                answers[(cid, message_id)] = (response.status_code, response.headers.get(REPLICA, ""),
                                              response.text)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=conversation) for conversation in conversations]
    for thread in threads:
        thread.start()
    victim = cluster.replicas["r1"]
    try:
        second_turn.wait(30)
        time.sleep(0.02)  # the four second turns are on their way, about half of them to r1
        victim.kill()
        killed.set()
        for thread in threads:
            thread.join(120)
    finally:
        cluster.stopped("r1")
    assert not failures, failures
    assert len(answers) == CONVERSATIONS * len(texts)
    assert all(status == 200 for status, _, _ in answers.values()), answers
    assert customer["amount"] in answers[(conversations[0][0], f"m-{conversations[0][0][:8]}-1")][2]
    ids = [cid for cid, _ in conversations]
    records, turns = _recorded(cluster, ids)
    assert sorted(records) == sorted(ids)  # one conversation record each, none doubled
    for cid in ids:  # one turn record per message id, in the order sent: nothing lost or doubled
        assert turns[cid] == [f"m-{cid[:8]}-{n}" for n in range(len(texts))], (cid, Counter(turns[cid]))
    after = {replica for (cid, mid), (_, replica, _) in answers.items() if not mid.endswith(("-0", "-1"))}
    assert after == {"r2"}  # the turns after the kill: only the survivor answered
