"""Conversation state in process and in a real Redis: restart, idempotent ids, the lock."""

from __future__ import annotations

import threading
import time

import pytest

from agent.state import ConversationState, InMemoryStateStore, PendingAction, RedisStateStore
from tests.servers.redis import redis_server, restart


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as server:
        yield server


def _roundtrip(store) -> None:
    state = ConversationState(conversation_id="c1", channel="wechat", account_no="0100012345", verified=True)
    state.slots["period"] = "2026-05"
    state.pending = PendingAction(tool="open_dispute", arguments={"period": "2026-05"}, summary="确认吗")
    store.save(state)
    state.slots["period"] = "changed after save"
    loaded = store.load("c1")
    assert loaded is not None
    assert loaded.slots["period"] == "2026-05" and loaded.pending.tool == "open_dispute"
    assert store.load("missing") is None


def _idempotent(store) -> None:
    assert store.stored_reply("c1", "m1") is None
    store.store_reply("c1", "m1", {"text": "您好"})
    assert store.stored_reply("c1", "m1") == {"text": "您好"}
    assert store.stored_reply("c2", "m1") is None  # ids are per conversation


def _lock_serialises(store) -> None:
    order: list[str] = []

    def worker(name: str) -> None:
        with store.lock("c-lock"):
            order.append(f"{name}-in")
            time.sleep(0.15)
            order.append(f"{name}-out")

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # no interleaving: each holder leaves before the next enters
    assert order[0].split("-")[0] == order[1].split("-")[0]
    assert order[2].split("-")[0] == order[3].split("-")[0]


def test_in_memory_store() -> None:
    store = InMemoryStateStore()
    _roundtrip(store)
    _idempotent(store)
    _lock_serialises(store)


@pytest.mark.redis
def test_redis_store_roundtrip_ids_and_lock(redis_url) -> None:
    store = RedisStateStore(redis_url.url, prefix="t1")
    _roundtrip(store)
    _idempotent(store)
    _lock_serialises(store)


@pytest.mark.redis
def test_redis_state_survives_server_and_process_restart(redis_url) -> None:
    store = RedisStateStore(redis_url.url, prefix="t2")
    state = ConversationState(conversation_id="keep", account_no="0100012345", verified=True, turns=3)
    store.save(state)
    store.store_reply("keep", "m9", {"text": "已查询"})
    restart(redis_url)
    fresh = RedisStateStore(redis_url.url, prefix="t2")  # a new process would build a new client
    loaded = fresh.load("keep")
    assert loaded is not None and loaded.turns == 3 and loaded.verified
    assert fresh.stored_reply("keep", "m9") == {"text": "已查询"}
    assert "keep" in fresh.conversation_ids()


@pytest.mark.redis
def test_a_lock_whose_release_failed_is_retaken_at_once_after_a_restart(redis_url) -> None:
    """Redis stopped inside a turn: the release fails, the lock stays in the append-only file; this
    process's next turn on the conversation takes it back without waiting for it to expire."""
    import redis

    store = RedisStateStore(redis_url.url, prefix="t3")
    with pytest.raises(redis.RedisError):
        with store.lock("c-orphan"):
            store.save(ConversationState(conversation_id="c-orphan", turns=1))
            redis_url.stop()
    with pytest.raises(redis.RedisError):  # a resend while Redis is still down keeps the token for later
        with store.lock("c-orphan"):
            pass
    restart(redis_url)
    assert store.client.get("t3:conv:c-orphan:lock")  # still held: restored from the append-only file
    started = time.monotonic()
    with store.lock("c-orphan"):
        pass
    assert time.monotonic() - started < 2  # not LOCK_WAIT_SECONDS / LOCK_TIMEOUT_SECONDS
    assert store.client.get("t3:conv:c-orphan:lock") is None
    assert store.load("c-orphan") is None  # the failed turn's state was not written
