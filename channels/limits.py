"""Request size limits and per-sender rate limits.

A body larger than the limit is refused with 413 before any handler parses it (the XML of a
WeChat message is a few hundred bytes; a megabyte is an attack or a mistake). Rate limits are
per sender — WeChat openid, web conversation, hotline call — so one noisy customer cannot slow
everyone else; with Redis the window is shared by all processes.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
    """Sliding one-minute window per sender, in this process's memory."""

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

    One script call per request, on this thread's own connection (agent.redis_client): count the
    hit and, on the window's first hit, set its expiry. The pooled pipeline of INCR + EXPIRE was
    one round trip too but cost ~145 µs of CPU per request against ~75 µs now.
    """

    def __init__(self, url: str, per_minute: int) -> None:
        from agent.redis_client import PerThreadRedis

        self._count_hit = PerThreadRedis(url).script(_COUNT_HIT)
        self.per_minute = per_minute

    def allow(self, sender: str) -> bool:
        key = f"powerdesk:rate:{sender}:{int(time.time() // 60)}"
        count = self._count_hit(keys=[key], args=[WINDOW_KEY_TTL_SECONDS])
        return int(count) <= self.per_minute


WINDOW_KEY_TTL_SECONDS = 120  # a window's counter outlives its minute, then Redis drops it

# KEYS: the window's counter. ARGV: its TTL. Atomic, so a counter never lives without an expiry.
_COUNT_HIT = """
local count = redis.call('incr', KEYS[1])
if count == 1 then
  redis.call('expire', KEYS[1], ARGV[1])
end
return count
"""


def rate_limiter(redis_url: str | None, per_minute: int) -> RateLimiter:
    return RedisRateLimiter(redis_url, per_minute) if redis_url else InProcessRateLimiter(per_minute)
