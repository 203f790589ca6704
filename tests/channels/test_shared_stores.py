"""Once-claims and rate windows: in process, and shared through a real Redis server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from channels.dedup import InProcessOnceStore, RedisOnceStore
from channels.limits import InProcessRateLimiter, RedisRateLimiter
from tests.servers.redis import redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


def test_in_process_claim_is_once_and_expires() -> None:
    store = InProcessOnceStore(ttl_seconds=0)
    assert store.claim("k") is True
    store_kept = InProcessOnceStore(ttl_seconds=600)
    assert store_kept.claim("k") is True and store_kept.claim("k") is False
    store_kept.record("k", {"mode": "passive", "text": "答复"})
    assert store_kept.result("k") == {"mode": "passive", "text": "答复"}
    assert store_kept.result("other") is None


@pytest.mark.redis
def test_redis_claim_is_shared_between_processes(redis_url: str) -> None:
    first, second = RedisOnceStore(redis_url), RedisOnceStore(redis_url)  # two app processes
    assert first.claim("wechat:msg:42") is True
    assert second.claim("wechat:msg:42") is False
    first.record("wechat:msg:42", {"mode": "passive", "text": "您好"})
    assert second.result("wechat:msg:42") == {"mode": "passive", "text": "您好"}
    assert second.claim("wechat:msg:43") is True


def test_in_process_rate_window_per_sender() -> None:
    limiter = InProcessRateLimiter(per_minute=3)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b") is True


@pytest.mark.redis
def test_redis_rate_window_is_shared(redis_url: str) -> None:
    one, two = RedisRateLimiter(redis_url, 3), RedisRateLimiter(redis_url, 3)
    results = [one.allow("wechat:o1"), two.allow("wechat:o1"), one.allow("wechat:o1"), two.allow("wechat:o1")]
    assert results == [True, True, True, False]
    assert one.allow("wechat:o2") is True


@pytest.mark.redis
def test_redis_rate_window_counts_every_thread_once(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, 50)  # each thread talks over its own connection
    results: list[bool] = []

    def hit() -> None:
        results.extend(limiter.allow("web:threads") for _ in range(20))

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results.count(True) == 50 and results.count(False) == 30


@pytest.mark.redis
def test_redis_claims_and_results_survive_a_server_restart_on_kept_connections() -> None:
    from tests.servers.redis import restart

    with redis_server() as server:
        store, other = RedisOnceStore(server.url), RedisOnceStore(server.url)
        assert store.claim("wechat:msg:90") is True
        store.record("wechat:msg:90", {"mode": "passive", "text": "已受理"})
        restart(server)  # append-only file keeps the claims; the kept connections are dead
        assert other.claim("wechat:msg:90") is False
        assert store.result("wechat:msg:90") == {"mode": "passive", "text": "已受理"}
        assert store.claim("wechat:msg:91") is True and other.claim("wechat:msg:91") is False
