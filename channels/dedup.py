"""Claim a message once across processes, and remember what became of it.

WeChat resends a message up to three times when no answer comes within 5 s, and the resend may
land on another app process. The first process to claim the message id answers it; the others
see the claim and the delivery record, so one message gives exactly one answer.
"""

from __future__ import annotations

import json
import os
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
    """Claims shared by every process on one Redis: set-if-absent with a TTL.

    Each thread talks over its own connection (agent.redis_client), which skips the pooled
    client's per-command check-out poll. Such a connection retries a command after a dropped
    connection, so a claim carries a random token: a retried claim whose first reply was lost
    finds its own token and still wins, instead of taking its own claim for a duplicate.
    """

    def __init__(self, url: str, ttl_seconds: int = 600, prefix: str = "powerdesk:once:") -> None:
        from agent.redis_client import PerThreadRedis

        self._clients = PerThreadRedis(url)
        self._claim = self._clients.script(_CLAIM)
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    def claim(self, key: str) -> bool:
        return bool(self._claim(keys=[self.prefix + key], args=[os.urandom(16).hex(), self.ttl_seconds]))

    def record(self, key: str, value: dict[str, Any]) -> None:
        payload = json.dumps(value, ensure_ascii=False)
        self._clients.get().set(self.prefix + key + ":result", payload, ex=self.ttl_seconds)

    def result(self, key: str) -> dict[str, Any] | None:
        raw = self._clients.get().get(self.prefix + key + ":result")
        return None if raw is None else json.loads(raw)


# KEYS: the claim. ARGV: this claim's token, TTL in seconds. 1 when the claim is (already) ours.
_CLAIM = """
local holder = redis.call('get', KEYS[1])
if holder == false then
  redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  return 1
end
return 0
"""


def once_store(redis_url: str | None, ttl_seconds: int = 600) -> OnceStore:
    return RedisOnceStore(redis_url, ttl_seconds) if redis_url else InProcessOnceStore(ttl_seconds)
