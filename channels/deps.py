"""The services shared by all routers, and the FastAPI dependencies that hand them out."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, Header, HTTPException, Request, status

from channels.agent_port import AgentLike, ReplyOut, reply_out
from channels.dedup import OnceStore
from channels.limits import RateLimiter
from channels.metrics import ServiceMetrics
from channels.settings import ChannelSettings

log = logging.getLogger("powerdesk.channels")

# Local-brain turns are CPU-bound Python: more threads than this only add GIL hand-offs and SQLite
# lock waits (measured with benchmarks/chat_load.py: server CPU per turn rises with 40 at once).
LOCAL_TURN_CONCURRENCY = 2
LLM_TURN_CONCURRENCY = 40  # Starlette's thread pool size; LLM turns mostly wait on the network


@dataclass
class Services:
    settings: ChannelSettings
    agent_factory: Callable[[], AgentLike]
    limiter: RateLimiter
    once: OnceStore
    metrics: ServiceMetrics
    wechat_client: Any = None  # channels.wechat_client.CustomerServiceClient
    _agent: AgentLike | None = None
    _agent_guard: threading.Lock = field(default_factory=threading.Lock)
    _turn_limiter: anyio.CapacityLimiter | None = None

    @property
    def agent(self) -> AgentLike:
        """The agent, built on first use: health checks and bad requests never wait for models to load."""
        if self._agent is None:
            with self._agent_guard:
                if self._agent is None:
                    self._agent = self.agent_factory()
        return self._agent

    def turn_limiter(self) -> anyio.CapacityLimiter:
        """How many agent turns run at once in this process (`POWERDESK_TURN_CONCURRENCY`)."""
        if self._turn_limiter is None:
            brain = getattr(self.agent, "brain", "local")
            auto = LOCAL_TURN_CONCURRENCY if brain == "local" else LLM_TURN_CONCURRENCY
            if self.settings.turn_concurrency < 0:
                raise ValueError("POWERDESK_TURN_CONCURRENCY: must be 0 (automatic) or a positive number")
            self._turn_limiter = anyio.CapacityLimiter(self.settings.turn_concurrency or auto)
        return self._turn_limiter

    async def turn(self, conversation_id: str, channel: str, text: str, message_id: str | None = None,
                   **kwargs: Any) -> ReplyOut:
        """One agent turn off the event loop (the agent does blocking database work)."""
        started = time.perf_counter()
        reply = await anyio.to_thread.run_sync(
            partial(self.agent.handle, conversation_id, channel, text, message_id, **kwargs),
            limiter=self.turn_limiter())
        self.metrics.turns.labels(channel).inc()
        self.metrics.turn_seconds.labels(channel).observe(time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        out = reply_out(conversation_id, reply)
        if out.handoff:
            self.metrics.handoffs.labels(channel).inc()
        log.info("turn", extra={"channel": channel, "conversation_id": conversation_id,
                                "ms": round(elapsed * 1000, 1), "awaiting": out.awaiting,
                                "actions": out.actions, "handoff": out.handoff})
        return out


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def enforce_rate_limit(services: Services, channel: str, sender: str) -> None:
    """429 when `sender` has used up its window (per channel, so openids and calls don't mix)."""
    if not services.limiter.allow(f"{channel}:{sender}"):
        services.metrics.rate_limited.labels(channel).inc()
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail="请求过于频繁，请稍后再试",
                            headers={"Retry-After": "60"})


def require_staff(
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """Staff only: `Authorization: Bearer <token>` or `X-API-Key: <token>` from POWERDESK_STAFF_TOKENS.

    401 without credentials, 403 with wrong ones; no tokens configured means nobody gets in.
    """
    token = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
    if token is None and x_api_key:
        token = x_api_key.strip()
    if not token:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="需要坐席凭证（Bearer 令牌或 X-API-Key）",
                            headers={"WWW-Authenticate": "Bearer"})
    if not any(secrets.compare_digest(token, known) for known in services.settings.staff_tokens):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="凭证无效或无坐席权限")
    return "staff:" + token[:4]


StaffDep = Annotated[str, Depends(require_staff)]
