"""The services shared by all routers, and the FastAPI dependencies that hand them out."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Header, HTTPException, Request, status

from channels.agent_port import AgentLike, ReplyOut, reply_out
from channels.conversation_tokens import ConversationTokens
from channels.dedup import OnceStore
from channels.limits import RateLimiter
from channels.metrics import ServiceMetrics
from channels.settings import ChannelSettings

log = logging.getLogger("powerdesk.channels")
T = TypeVar("T")

# Local-brain turns are short CPU-bound Python (~5 ms): by default they run on the event loop
# itself. Handing each to a worker thread cost ~2 ms more CPU per turn (GIL hand-offs around every
# SQLite call; benchmarks/chat_load.py: 9.8 vs 7.7 ms of server CPU per turn) and bought nothing,
# since only one thread runs Python at a time. POWERDESK_TURN_CONCURRENCY=N restores a pool of N.
LOCAL_TURN_THREADS = 2  # local turns that must leave the loop (WeChat's deadline)
LLM_TURN_CONCURRENCY = 40  # Starlette's thread pool size; LLM turns mostly wait on the network


@dataclass
class Services:
    settings: ChannelSettings
    agent_factory: Callable[[], AgentLike]
    limiter: RateLimiter
    once: OnceStore
    metrics: ServiceMetrics
    conversation_tokens: ConversationTokens
    wechat_client: Any = None  # channels.wechat_client.CustomerServiceClient
    channel_clients: dict[str, Any] = field(default_factory=dict)  # a channel's own settings/clients, built on first use
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

    @property
    def turns_inline(self) -> bool:
        """Whether agent turns run on the event loop (automatic setting and the local brain)."""
        if self.settings.turn_concurrency < 0:
            raise ValueError("POWERDESK_TURN_CONCURRENCY: must be 0 (automatic) or a positive number")
        return self.settings.turn_concurrency == 0 and getattr(self.agent, "brain", "local") == "local"

    def turn_limiter(self) -> anyio.CapacityLimiter:
        """How many agent turns run at once in worker threads (`POWERDESK_TURN_CONCURRENCY`)."""
        if self._turn_limiter is None:
            brain = getattr(self.agent, "brain", "local")
            auto = LOCAL_TURN_THREADS if brain == "local" else LLM_TURN_CONCURRENCY
            self._turn_limiter = anyio.CapacityLimiter(self.settings.turn_concurrency or auto)
        return self._turn_limiter

    async def blocking(self, func: Callable[..., T], *args: Any, off_loop: bool = False) -> T:
        """Run agent-side blocking work (database, Redis): inline when turns run inline, else in a thread."""
        if self.turns_inline and not off_loop:
            return func(*args)
        return await anyio.to_thread.run_sync(partial(func, *args), limiter=self.turn_limiter())

    async def turn(self, conversation_id: str, channel: str, text: str, message_id: str | None = None,
                   *, off_loop: bool = False, **kwargs: Any) -> ReplyOut:
        """One agent turn. `off_loop`: always in a worker thread, for a caller that must be able to
        stop waiting for it (WeChat's passive-reply deadline), which a turn on the loop cannot."""
        started = time.perf_counter()
        reply = await self.blocking(partial(self.agent.handle, conversation_id, channel, text, message_id,
                                            **kwargs), off_loop=off_loop)
        out = reply_out(conversation_id, reply)
        if out.held_by_staff:  # a person holds it: no turn ran, the channel records the message
            log.info("held by staff", extra={"channel": channel, "conversation_id": conversation_id})
            return out
        self.metrics.turns.labels(channel).inc()
        self.metrics.turn_seconds.labels(channel).observe(time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        if out.handoff:
            self.metrics.handoffs.labels(channel).inc()
        log.info("turn", extra={"channel": channel, "conversation_id": conversation_id,
                                "ms": round(elapsed * 1000, 1), "awaiting": out.awaiting,
                                "actions": out.actions, "handoff": out.handoff})
        return out

    async def record_held(self, conversation_id: str, channel: str, user_text: str, *,
                          off_loop: bool = False) -> None:
        """Keep a customer message the agent did not answer because a person holds the conversation."""
        await self.blocking(partial(self.agent.record_held_turn, conversation_id, user_text, "", channel),
                            off_loop=off_loop)


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
