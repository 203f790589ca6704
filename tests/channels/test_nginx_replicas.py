"""Two `powerdesk serve` replicas on one PostgreSQL and one Redis behind a real nginx.

nginx runs docs/deploy/nginx.conf (tests/servers/nginx.py changes only ports and paths). Turns of one
web conversation land on both replicas (X-PowerDesk-Replica says which) and keep their state; a
WeChat retry that nginx sends to the other replica is answered once; a replica stopped with SIGTERM
or killed with SIGKILL in the middle of a conversation loses no turn and duplicates none: the client
resends the same message id as the page does (channels/web/chat.js) and the other replica answers.
Faults: PostgreSQL connections cut with pg_terminate_backend (between and during turns) and Redis
stopped and restarted mid-conversation end in an answer or a clear 503, never a half-written turn
or another conversation's state. Last, a replica SIGKILLed under concurrent conversations: every
answered message is recorded exactly once (the property `benchmarks/bench_chat_replicas.py
--kill-replica` measures). About 100 s: two replicas warm up once per module, one restarts, and the
last test waits out a killed replica's conversation lock lease (agent/state.py, 10 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import xmltodict
from sqlalchemy import select

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import make_engine
from tests.channels.serve_process import POWERDESK, ServeProcess, demo_customers, serve_process, web_conversation
from tests.channels.wechat_messages import plain_request, text_xml
from tests.servers.nginx import NginxServer, nginx_server
from tests.servers.ports import free_port
from tests.servers.postgres import PostgresServer, postgres_server
from tests.servers.redis import RedisServer, redis_server, restart

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

WECHAT_TOKEN = "nginx-replicas-token"
REPLICA = "X-PowerDesk-Replica"


class Cluster:
    """The shared environment, the replicas by name (restartable on their upstream port), nginx."""

    def __init__(self, env: dict[str, str], pg: PostgresServer, redis: RedisServer) -> None:
        self.env, self.ports = env, {"r1": free_port(), "r2": free_port()}
        self.pg, self.redis = pg, redis
        self.replicas: dict[str, ServeProcess] = {}
        self._contexts: dict[str, Any] = {}
        self.nginx: NginxServer | None = None

    def start(self, name: str) -> ServeProcess:
        context = serve_process({**self.env, "POWERDESK_REPLICA_NAME": name}, port=self.ports[name])
        self.replicas[name], self._contexts[name] = context.__enter__(), context
        return self.replicas[name]

    def stopped(self, name: str) -> None:
        """The replica's process has exited: release what its serve_process context holds."""
        self._contexts.pop(name).__exit__(None, None, None)
        del self.replicas[name]

    def close(self) -> None:
        for context in self._contexts.values():
            context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with postgres_server() as pg, redis_server() as redis:
        env = {"POWERDESK_DATABASE_URL": pg.create_database(), "POWERDESK_REDIS_URL": redis.url,
               "POWERDESK_VAR_DIR": tempfile.mkdtemp(prefix="powerdesk-nginx-"),
               "POWERDESK_WECHAT_TOKEN": WECHAT_TOKEN, "POWERDESK_SESSION_SECRET": "nginx-replicas-secret",
               "POWERDESK_SHUTDOWN_GRACE_SECONDS": "20"}
        full = {**os.environ, **env}
        subprocess.run([str(POWERDESK), "db", "upgrade"], env=full, check=True, capture_output=True)
        subprocess.run([str(POWERDESK), "demo", "seed", "--customers", "20", "--seed", "7"], env=full,
                       check=True, capture_output=True)
        cluster = Cluster(env, pg, redis)
        try:
            failures: list[BaseException] = []

            def start(name: str) -> None:
                try:
                    cluster.start(name)
                except BaseException as exc:  # reported below, with the replica's log in it
                    failures.append(exc)

            starters = [threading.Thread(target=start, args=(name,)) for name in cluster.ports]
            for thread in starters:  # both replicas load their models at the same time
                thread.start()
            for thread in starters:
                thread.join()
            assert not failures and set(cluster.replicas) == {"r1", "r2"}, failures
            with nginx_server([f"127.0.0.1:{port}" for port in cluster.ports.values()]) as nginx:
                cluster.nginx = nginx
                yield cluster
        finally:
            cluster.close()


@pytest.fixture(scope="module")
def customer(cluster: Cluster) -> dict[str, Any]:
    found = demo_customers(cluster.env["POWERDESK_DATABASE_URL"])
    assert found, "no demo customer with a bill"
    return found[0]


def _turn_rows(cluster: Cluster, conversation_id: str, column: Any = TurnRecord.user_text) -> list[Any]:
    engine = make_engine(cluster.env["POWERDESK_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(column).join(ConversationRecord).where(
                ConversationRecord.conversation_id == conversation_id).order_by(TurnRecord.id)).scalars())
    finally:
        engine.dispose()


def _say(nginx: NginxServer, cid: str, headers: dict[str, str], text: str,
         message_id: str | None = None) -> httpx.Response:
    body = {"text": text, **({"message_id": message_id} if message_id else {})}
    return httpx.post(f"{nginx.url}/api/chat/conversations/{cid}/messages?stream=false", json=body,
                      headers=headers, timeout=60)


def _say_like_the_page(nginx: NginxServer, cid: str, headers: dict[str, str], text: str, message_id: str,
                       timeout: float = 60) -> httpx.Response:
    """chat.js: on a 5xx or a cut connection resend the same message id (after Retry-After)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = _say(nginx, cid, headers, text, message_id)
            if response.status_code < 500 or time.monotonic() > deadline:
                return response
            time.sleep(min(float(response.headers.get("retry-after", "0.5")), 2))
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_one_conversation_alternates_between_replicas(cluster: Cluster, customer: dict[str, Any]) -> None:
    nginx = cluster.nginx
    assert nginx is not None
    cid, headers = web_conversation(nginx.url)
    texts = [f"查一下{customer['period']}的电费", f"户号{customer['account']}，手机号后四位{customer['last4']}",
             f"查一下{customer['period']}的电费", "电费怎么交", f"{customer['period']}的电费是多少"]
    answered_by, replies = [], []
    for text in texts:
        response = _say(nginx, cid, headers, text)
        assert response.status_code == 200, response.text
        answered_by.append(response.headers[REPLICA])
        replies.append(response.json())
    assert set(answered_by) == {"r1", "r2"}, answered_by  # round robin: both replicas served turns
    assert replies[0]["awaiting"] in ("account_no", "last4")
    # Verified on one replica, the bill answered by whichever replica got the next turn.
    assert customer["amount"] in replies[2]["text"] and customer["amount"] in replies[4]["text"]
    assert "account_no" not in (replies[3].get("awaiting"), replies[4].get("awaiting"))
    assert _turn_rows(cluster, cid) == texts
    assert "upstream=127.0.0.1:" in nginx.access_log()  # the requests really went through nginx


def test_a_wechat_retry_on_the_other_replica_is_answered_once(cluster: Cluster) -> None:
    nginx = cluster.nginx
    assert nginx is not None
    openid = "o_nginx_retry"
    xml = text_xml(openid, "电费怎么交", int(time.time() * 1000))
    answers, replicas = [], set()
    for _ in range(3):  # WeChat's three tries of one message: nginx spreads them over the replicas
        url, body = plain_request(WECHAT_TOKEN, xml)
        response = httpx.post(nginx.url + url, content=body, timeout=30)
        assert response.status_code == 200, response.text
        replicas.add(response.headers[REPLICA])
        if response.text != "success":
            answers.append(xmltodict.parse(response.text)["xml"]["Content"])
    assert replicas == {"r1", "r2"}
    # One turn; a retry that finds it answered gets the same passive reply again (WeChat shows one).
    assert len(set(answers)) <= 1, answers
    time.sleep(0.5)
    assert _turn_rows(cluster, f"wechat-{openid}") == ["电费怎么交"]


def _verified_conversation(cluster: Cluster, customer: dict[str, Any]) -> tuple[str, dict[str, str]]:
    assert cluster.nginx is not None
    cid, headers = web_conversation(cluster.nginx.url)
    response = _say(cluster.nginx, cid, headers, f"户号{customer['account']}，手机号后四位{customer['last4']}")
    assert response.status_code == 200, response.text
    return cid, headers


def _terminate_app_backends(cluster: Cluster) -> int:
    """pg_terminate_backend on every connection of the replicas' database: a cut connection."""
    import psycopg

    dbname = cluster.env["POWERDESK_DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", port=cluster.pg.port, user="postgres", dbname="postgres",
                         autocommit=True) as connection:
        rows = connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchall()
    return len(rows)


def test_cut_database_connections_are_replaced_before_the_next_turn(cluster: Cluster,
                                                                   customer: dict[str, Any]) -> None:
    nginx = cluster.nginx
    assert nginx is not None
    cid, headers = _verified_conversation(cluster, customer)
    assert _terminate_app_backends(cluster) >= 2  # both replicas' pooled connections
    texts = [f"查一下{customer['period']}的电费", f"{customer['period']}的电费是多少"]
    for text in texts:  # one turn on each replica, each on a pool whose connections were cut
        response = _say(nginx, cid, headers, text)
        assert response.status_code == 200, response.text
        assert customer["amount"] in response.json()["text"], response.json()
    assert _turn_rows(cluster, cid)[1:] == texts


def test_connections_cut_during_turns_give_an_answer_or_a_503_and_no_half_written_turn(
        cluster: Cluster, customer: dict[str, Any]) -> None:
    """Each message sent once while connections are cut, then the page's resend of every one that
    got a 503: a commit cut after PostgreSQL applied it left the turn recorded with its answer lost,
    and the resend must be answered without recording it twice (agent.records, unique message id)."""
    nginx = cluster.nginx
    assert nginx is not None
    cid, headers = _verified_conversation(cluster, customer)
    stop = threading.Event()

    def cut() -> None:
        while not stop.is_set():
            _terminate_app_backends(cluster)
            time.sleep(0.01)

    from agent.replies import render

    apology = render("tool_error").text
    cutter = threading.Thread(target=cut)
    cutter.start()
    sent: dict[str, str] = {}  # message id -> text
    answered: dict[str, str] = {}  # message id -> the reply's text
    try:
        for n in range(8):
            message_id, text = f"m-cut-{n:04d}", f"查一下{customer['period']}的电费（第{n}次）"
            sent[message_id] = text
            response = _say(nginx, cid, headers, text, message_id=message_id)
            assert response.status_code in (200, 503), response.text
            if response.status_code == 503:
                assert "稍后" in response.json()["detail"] and response.headers.get("retry-after")
            else:
                answered[message_id] = response.json()["text"]
    finally:
        stop.set()
        cutter.join()
    time.sleep(1)  # pg_terminate_backend signals the backend: the last cuts land a moment later
    for message_id in sent.keys() - answered.keys():  # the page resends each 503 with its id, at once
        response = _say(nginx, cid, headers, sent[message_id], message_id=message_id)
        assert response.status_code == 200, (message_id, response.text)  # the cut connections were replaced
        answered[message_id] = response.json()["text"]
    recorded = _turn_rows(cluster, cid, TurnRecord.message_id)[1:]
    # Nothing doubled: each message id is recorded at most once, even when its resend ran the turn again.
    assert len(recorded) == len(set(recorded)) and set(recorded) <= set(sent), (recorded, answered)
    for message_id, text in answered.items():
        # Answered with the bill: recorded. The apology (a tool's connection was cut): the agent's
        # own clear error, recorded if it was the tool that failed, not if the turn itself did; it
        # may come with the apology for a repeat contact (this customer's earlier conversations).
        assert apology in text or (customer["amount"] in text and message_id in recorded), (message_id, text)
    # The connections cut last were replaced: the next turn is answered, not apologised for.
    after = _say(nginx, cid, headers, f"查一下{customer['period']}的电费")
    assert after.status_code == 200 and customer["amount"] in after.json()["text"], after.text


def test_redis_restarted_mid_conversation(cluster: Cluster, customer: dict[str, Any]) -> None:
    """Down: a clear 503, never another conversation's state; back (same data): the turn goes on."""
    nginx = cluster.nginx
    assert nginx is not None
    cid, headers = _verified_conversation(cluster, customer)
    cluster.redis.stop()
    try:
        down = _say(nginx, cid, headers, f"查一下{customer['period']}的电费", message_id="m-redis-0001")
        assert down.status_code == 503, down.text
        assert "稍后" in down.json()["detail"]
    finally:
        restart(cluster.redis)
    after = _say_like_the_page(nginx, cid, headers, f"查一下{customer['period']}的电费", "m-redis-0001")
    assert after.status_code == 200, after.text
    assert customer["amount"] in after.json()["text"]  # still verified: the state survived the restart
    again = _say(nginx, cid, headers, "电费怎么交")
    assert again.status_code == 200 and again.json().get("awaiting") not in ("account_no", "last4")
    assert _turn_rows(cluster, cid)[1:] == [f"查一下{customer['period']}的电费", "电费怎么交"]


def _next_turn_lands_on(cluster: Cluster, name: str) -> None:
    """Spend cheap requests until nginx's round robin sends the next one to replica `name`."""
    assert cluster.nginx is not None
    for _ in range(4):
        if httpx.get(cluster.nginx.url + "/healthz", timeout=10).headers[REPLICA] != name:
            return
    raise AssertionError(f"nginx sends every request to {name}")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_replica_stopped_mid_conversation_loses_no_turn(cluster: Cluster, customer: dict[str, Any],
                                                          how: str) -> None:
    nginx = cluster.nginx
    assert nginx is not None
    cid, headers = web_conversation(nginx.url)
    identify = f"户号{customer['account']}，手机号后四位{customer['last4']}"
    verified = _say(nginx, cid, headers, identify)
    assert verified.status_code == 200, verified.text
    victim = "r1"
    _next_turn_lands_on(cluster, victim)
    question, message_id = f"查一下{customer['period']}的电费", f"m-{how.lower()}-0001"
    first: dict[str, Any] = {}

    def in_flight() -> None:
        try:
            first["response"] = _say(nginx, cid, headers, question, message_id)
        except httpx.HTTPError as exc:
            first["error"] = exc

    thread = threading.Thread(target=in_flight)
    thread.start()
    time.sleep(0.05)
    server = cluster.replicas[victim]
    if how == "SIGTERM":
        server.process.terminate()
    else:
        server.kill()
    thread.join(60)
    try:
        after = _say_like_the_page(nginx, cid, headers, question, message_id)
        assert after.status_code == 200, after.text
        assert after.headers[REPLICA] == "r2"  # r1 is gone: the other replica answers, with r1's state
        assert customer["amount"] in after.json()["text"]
        if how == "SIGTERM" and "response" in first:  # drained: the turn in flight was answered
            assert first["response"].status_code in (200, 502, 503), first["response"].text
        nxt = _say(nginx, cid, headers, "电费怎么交")
        # After SIGKILL only r2 is left; after SIGTERM r1 may still be draining a kept-alive
        # upstream connection of nginx's, which is allowed: the turn must be answered either way.
        assert nxt.status_code == 200 and (how == "SIGTERM" or nxt.headers[REPLICA] == "r2")
        # One turn per message: the resent message id was answered once, nothing lost or doubled.
        assert _turn_rows(cluster, cid) == [identify, question, "电费怎么交"]
    finally:
        server.process.wait(30)
        cluster.stopped(victim)
        cluster.start(victim)  # back on its upstream port for the next case


def test_the_replica_header_is_sent_only_when_the_replica_is_named() -> None:
    from fastapi.testclient import TestClient

    from channels.app import create_app
    from channels.settings import ChannelSettings

    named = TestClient(create_app(ChannelSettings(replica_name="app2"), agent=object()))  # type: ignore[arg-type]
    assert named.get("/static/chat.css").headers[REPLICA] == "app2"
    unnamed = TestClient(create_app(ChannelSettings(), agent=object()))  # type: ignore[arg-type]
    assert REPLICA not in unnamed.get("/static/chat.css").headers


# A replica SIGKILLed under concurrent conversations (last in the module: r1 stays down). Four
# conversations through nginx, each message sent with a message id and resent like the page on a 5xx
# or a cut connection. r1 is frozen (SIGSTOP) the moment it holds conversation A's lock mid-turn, the
# other three conversations' second turns are sent, then r1 is SIGKILLed; the later turns go to r2.
# PostgreSQL must then hold one conversation record per conversation and one turn record per message
# id, in the order sent. A's resend is answered once r1's lock lease lapses (LOCK_TIMEOUT_SECONDS).

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


def test_a_replica_killed_under_load_loses_and_doubles_no_record(
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
