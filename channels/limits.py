"""Request size limits and per-sender rate limits.

A body larger than the limit is refused with 413 before any handler parses it (the XML of a
WeChat message is a few hundred bytes; a megabyte is an attack or a mistake). Rate limits are
per sender — WeChat openid, web conversation, hotline call — so one noisy customer cannot slow
everyone else; with Redis the window is shared by all processes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from limits.strategies import FixedWindowRateLimiter


class BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Pure ASGI middleware: 413 when Content-Length or the streamed body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await _send_413(send, self.max_bytes)
                    return
        # Chunked bodies carry no length: read them here, counting, then replay to the app.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_413(send, self.max_bytes)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_413(send: Send, max_bytes: int) -> None:
    payload = json.dumps(
        {"detail": f"请求体过大：最多 {max_bytes} 字节", "field": "body"}, ensure_ascii=False
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class RateLimiter(Protocol):
    def allow(self, sender: str) -> bool: ...


class InProcessRateLimiter:
    """Sliding one-minute window per sender, in this process's memory.

    Not `limits`' MemoryStorage: its expiry timer rescans every sender's window each 10 ms while
    requests come in: with 2,000 active senders at 200 requests/s the process spent ~1.4 ms of
    CPU per request, against ~0.07 ms with this deque (benchmarks/bench_rate_limit.py
    --compare-memory); a bare call is ~0.5 µs here, 3-5 µs there.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._guard = threading.Lock()

    def allow(self, sender: str) -> bool:
        now = time.monotonic()
        with self._guard:
            hits = self._hits.setdefault(sender, deque())
            while hits and now - hits[0] > 60:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False
            hits.append(now)
            if len(self._hits) > 50_000:  # forget idle senders
                for key in [k for k, v in self._hits.items() if not v]:
                    del self._hits[key]
            return True


class RedisRateLimiter:
    """Fixed one-minute windows per sender, counted in Redis so every process shares them.

    The `limits` package's fixed window on its Redis storage: one script call per request that
    counts the hit and, on the window's first hit, sets its expiry (a window lasts a minute from
    its first hit). Each thread has its own storage whose client keeps one connection (as
    agent.redis_client does): through limits' default pooled client the same call cost ~1.6x the
    CPU, ~41 µs against ~25 µs (benchmarks/bench_rate_limit.py).
    """

    def __init__(self, url: str, per_minute: int) -> None:
        from limits import RateLimitItemPerMinute  # ~70 ms to import: only when Redis is used

        self.url = url
        self.per_minute = per_minute
        self._window = RateLimitItemPerMinute(per_minute, namespace=WINDOW_NAMESPACE)
        self._local = threading.local()

    def _strategy(self) -> FixedWindowRateLimiter:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # first call on this thread, or after a fork
            from limits.storage import RedisStorage
            from limits.strategies import FixedWindowRateLimiter
            from redis.backoff import ExponentialBackoff
            from redis.retry import Retry

            from agent.redis_client import RETRIES

            # Building the storage needs no Redis: its scripts load on first use (and again if a
            # restarted server forgot them); a dropped connection is reopened and the call resent.
            storage = RedisStorage(self.url, key_prefix=KEY_PREFIX, single_connection_client=True,
                                   retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), RETRIES))
            local.strategy, local.pid = FixedWindowRateLimiter(storage), os.getpid()
        strategy: FixedWindowRateLimiter = local.strategy
        return strategy

    def allow(self, sender: str) -> bool:
        return self._strategy().hit(self._window, sender)


# A window's counter is `powerdesk:rate/<sender>/<per minute>/1/minute`; it expires with its minute.
KEY_PREFIX = "powerdesk"
WINDOW_NAMESPACE = "rate"


def rate_limiter(redis_url: str | None, per_minute: int) -> RateLimiter:
    return RedisRateLimiter(redis_url, per_minute) if redis_url else InProcessRateLimiter(per_minute)
