"""The Redis state store's cheap turn: the lock reads the state, the release writes it.

Checked against a real redis-server: round trips per turn, read-your-writes inside the lock,
nothing visible to other processes before the release, a save followed by an error is kept,
the release never frees another holder's lock, a dead holder's lock expires, threads keep
their own pending writes, and a kept connection survives a Redis restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection

import agent.state as state_module
from agent.state import ConversationState, LockTimeout, RedisStateStore
from channels.limits import RedisRateLimiter
from tests.servers.redis import RedisServer, redis_server, restart

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
def probe(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


class RoundTrips:
    """Counts commands (or pipelines) sent on any redis-py connection: each is one round trip."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = Connection.send_packed_command

        def counting(conn: Connection, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(conn, command, check_health)

        monkeypatch.setattr(Connection, "send_packed_command", counting)


def _turn(store: RedisStateStore, limiter: RedisRateLimiter, cid: str, message_id: str | None) -> None:
    """What Agent.handle does with the store on one web turn."""
    assert limiter.allow(f"web:{cid}")
    with store.lock(cid):
        if message_id is not None:
            assert store.stored_reply(cid, message_id) is None
        state = store.load(cid) or ConversationState(conversation_id=cid)
        state.turns += 1
        store.save(state)
        if message_id is not None:
            store.store_reply(cid, message_id, {"text": f"第{state.turns}轮"})


def test_a_turn_takes_three_round_trips_four_with_a_message_id(server: RedisServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store, limiter = RedisStateStore(server.url, prefix="rt"), RedisRateLimiter(server.url, 1000)
    _turn(store, limiter, "c-rt", "m0")  # connects and loads the scripts once
    trips = RoundTrips(monkeypatch)
    _turn(store, limiter, "c-rt", None)
    assert trips.count == 3  # rate window, lock + read, write + release
    _turn(store, limiter, "c-rt", "m1")
    assert trips.count == 3 + 4  # plus the stored-reply lookup
    fresh = RedisStateStore(server.url, prefix="rt")
    loaded = fresh.load("c-rt")
    assert loaded is not None and loaded.turns == 3
    assert fresh.stored_reply("c-rt", "m1") == {"text": "第3轮"}
    assert "c-rt" in fresh.conversation_ids()


def test_writes_inside_the_lock_are_read_back_and_published_on_release(server: RedisServer) -> None:
    mine, other_process = RedisStateStore(server.url, prefix="rw"), RedisStateStore(server.url, prefix="rw")
    mine.save(ConversationState(conversation_id="c-rw", turns=1))
    with mine.lock("c-rw"):
        state = mine.load("c-rw")
        assert state is not None and state.turns == 1
        state.turns = 2
        mine.save(state)
        state.turns = 99  # changed after save: not what was saved
        again = mine.load("c-rw")
        assert again is not None and again.turns == 2
        mine.store_reply("c-rw", "m1", {"text": "好的"})
        assert mine.stored_reply("c-rw", "m1") == {"text": "好的"}
        seen = other_process.load("c-rw")
        assert seen is not None and seen.turns == 1  # not released yet
        assert other_process.stored_reply("c-rw", "m1") is None
    seen = other_process.load("c-rw")
    assert seen is not None and seen.turns == 2
    assert other_process.stored_reply("c-rw", "m1") == {"text": "好的"}


def test_a_state_saved_before_an_error_is_kept(server: RedisServer, probe: redis.Redis) -> None:
    store = RedisStateStore(server.url, prefix="err")
    with pytest.raises(RuntimeError, match="after save"), store.lock("c-err"):
        store.save(ConversationState(conversation_id="c-err", turns=5))
        raise RuntimeError("after save")
    loaded = RedisStateStore(server.url, prefix="err").load("c-err")
    assert loaded is not None and loaded.turns == 5
    assert probe.exists("err:conv:c-err:lock") == 0  # released despite the error
    with pytest.raises(RuntimeError), store.lock("c-err-none"):
        raise RuntimeError("nothing saved")
    assert store.load("c-err-none") is None


def test_release_never_frees_a_lock_another_holder_took_after_expiry(server: RedisServer,
                                                                     probe: redis.Redis) -> None:
    store = RedisStateStore(server.url, prefix="tok")
    with store.lock("c-tok"):
        store.save(ConversationState(conversation_id="c-tok", turns=7))
        # our lock expired and another process took it
        probe.set("tok:conv:c-tok:lock", "someone-else", px=30_000)
    assert probe.get("tok:conv:c-tok:lock") == b"someone-else"
    loaded = store.load("c-tok")
    assert loaded is not None and loaded.turns == 7  # the state is written, as before


def test_a_dead_holders_lock_expires_and_a_busy_lock_times_out(server: RedisServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "LOCK_TIMEOUT_SECONDS", 0.4)
    monkeypatch.setattr(state_module, "LOCK_WAIT_SECONDS", 0.15)
    crashed, survivor = RedisStateStore(server.url, prefix="exp"), RedisStateStore(server.url, prefix="exp")
    dead_holder = crashed.lock("c-exp")  # kept referenced: collecting it would run its release
    dead_holder.__enter__()  # never released: the process died holding it
    with pytest.raises(LockTimeout, match="c-exp"), survivor.lock("c-exp"):
        pass
    monkeypatch.setattr(state_module, "LOCK_WAIT_SECONDS", 5.0)
    started = time.monotonic()
    with survivor.lock("c-exp"):
        waited = time.monotonic() - started
    assert 0.1 < waited < 3.0


def test_pending_writes_belong_to_the_thread_holding_the_lock(server: RedisServer) -> None:
    store = RedisStateStore(server.url, prefix="thr")
    store.save(ConversationState(conversation_id="c-thr", turns=1))
    saved, release = threading.Event(), threading.Event()

    def holder() -> None:
        with store.lock("c-thr"):
            store.save(ConversationState(conversation_id="c-thr", turns=2))
            saved.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert saved.wait(5)
    seen = store.load("c-thr")  # this thread holds no lock: it reads Redis, not the holder's pending save
    assert seen is not None and seen.turns == 1
    release.set()
    thread.join(5)
    seen = store.load("c-thr")
    assert seen is not None and seen.turns == 2


def test_the_same_store_keeps_working_after_redis_restarts(server: RedisServer) -> None:
    store, limiter = RedisStateStore(server.url, prefix="rs"), RedisRateLimiter(server.url, 1000)
    _turn(store, limiter, "c-rs", "m1")
    restart(server)  # kept connections are now dead and the script cache is empty
    _turn(store, limiter, "c-rs", "m2")
    loaded = store.load("c-rs")
    assert loaded is not None and loaded.turns == 2


def test_rate_window_counter_always_has_an_expiry(server: RedisServer, probe: redis.Redis) -> None:
    limiter = RedisRateLimiter(server.url, 2)
    assert [limiter.allow("web:ttl") for _ in range(3)] == [True, True, False]
    keys = probe.keys("powerdesk:rate/web:ttl/*")
    assert len(keys) == 1 and probe.get(keys[0]) == b"3"
    assert 0 < probe.ttl(keys[0]) <= 60


def test_a_live_holder_keeps_its_lock_past_the_timeout_by_renewing_it(
        server: RedisServer, probe: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn slower than LOCK_TIMEOUT_SECONDS (a slow model) keeps its lease; another replica waits."""
    monkeypatch.setattr(state_module, "LOCK_TIMEOUT_SECONDS", 0.4)
    monkeypatch.setattr(state_module, "LOCK_RENEW_SECONDS", 0.1)
    monkeypatch.setattr(state_module, "LOCK_WAIT_SECONDS", 0.1)
    holder, other = RedisStateStore(server.url, prefix="ren"), RedisStateStore(server.url, prefix="ren")
    with holder.lock("c-ren"):
        for _ in range(4):  # 4 × ≥ 0.25 s: well past the 0.4 s lease
            time.sleep(0.15)
            with pytest.raises(LockTimeout), other.lock("c-ren"):
                pass
        assert 0 < probe.pttl("ren:conv:c-ren:lock") <= 400
    with other.lock("c-ren"):  # released: taken at once
        pass


def test_a_holder_that_stops_renewing_frees_the_lock_within_the_timeout(
        server: RedisServer, probe: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A frozen or killed replica: its lease lapses, and a renewal never extends someone else's lock."""
    monkeypatch.setattr(state_module, "LOCK_TIMEOUT_SECONDS", 0.4)
    monkeypatch.setattr(state_module, "LOCK_RENEW_SECONDS", 0.1)
    monkeypatch.setattr(state_module, "LOCK_WAIT_SECONDS", 3.0)
    frozen, survivor = RedisStateStore(server.url, prefix="frz"), RedisStateStore(server.url, prefix="frz")
    held = frozen.lock("c-frz")  # kept referenced: collecting it would run its release
    held.__enter__()
    token = probe.get("frz:conv:c-frz:lock").decode()
    frozen._renewer.remove("frz:conv:c-frz:lock", token)  # as if the process stopped
    started = time.monotonic()
    with survivor.lock("c-frz"):
        waited = time.monotonic() - started
        frozen._renewer.add("frz:conv:c-frz:lock", token)  # a late renewal by the old holder …
        assert frozen._renewer.renew_now() == 0  # … does not touch the survivor's lock
        assert probe.get("frz:conv:c-frz:lock").decode() != token
    assert 0.1 < waited < 2.0
