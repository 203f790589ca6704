"""Claim a message once across processes, and remember what became of it.

WeChat resends a message up to three times when no answer comes within 5 s, and the resend may
land on another app process. The first process to claim the message id answers it; the others
see the claim and the delivery record, so one message gives exactly one answer.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Protocol


class OnceStore(Protocol):
    def claim(self, key: str) -> bool: ...

    def record(self, key: str, value: dict[str, Any]) -> None: ...

    def result(self, key: str) -> dict[str, Any] | None: ...


class InProcessOnceStore:
    """Claims within one process (the default without Redis), forgotten after `ttl_seconds`."""

    def __init__(self, ttl_seconds: int = 600) -> None:
        self.ttl_seconds = ttl_seconds
        self._claims: dict[str, float] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._guard = threading.Lock()

    def _expire(self, now: float) -> None:
        for key in [k for k, t in self._claims.items() if now - t > self.ttl_seconds]:
            self._claims.pop(key, None)
            self._results.pop(key, None)

    def claim(self, key: str) -> bool:
        now = time.monotonic()
        with self._guard:
            if len(self._claims) > 10_000:
                self._expire(now)
            claimed_at = self._claims.get(key)
            if claimed_at is not None and now - claimed_at <= self.ttl_seconds:
                return False
            self._claims[key] = now
            return True

    def record(self, key: str, value: dict[str, Any]) -> None:
        with self._guard:
            self._results[key] = value

    def result(self, key: str) -> dict[str, Any] | None:
        with self._guard:
            return self._results.get(key)


class RedisOnceStore:
    """Claims shared by every process on one Redis: SET NX with a TTL."""

    def __init__(self, url: str, ttl_seconds: int = 600, prefix: str = "powerdesk:once:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    def claim(self, key: str) -> bool:
        return bool(self._redis.set(self.prefix + key, "1", nx=True, ex=self.ttl_seconds))

    def record(self, key: str, value: dict[str, Any]) -> None:
        payload = json.dumps(value, ensure_ascii=False)
        self._redis.set(self.prefix + key + ":result", payload, ex=self.ttl_seconds)

    def result(self, key: str) -> dict[str, Any] | None:
        raw = self._redis.get(self.prefix + key + ":result")
        return None if raw is None else json.loads(raw)


def once_store(redis_url: str | None, ttl_seconds: int = 600) -> OnceStore:
    return RedisOnceStore(redis_url, ttl_seconds) if redis_url else InProcessOnceStore(ttl_seconds)
