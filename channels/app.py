"""The PowerDesk web service: one FastAPI app, a router per channel and for operations.

`create_app(settings, agent)` builds everything from explicit inputs so tests, benchmarks and
`powerdesk serve` all run the same app; shared state (conversations, de-duplication, rate
windows) lives in the database and Redis, so several processes can serve one conversation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from channels import assist, dashboard, experience, ops
from agent.agent import AgentInputError, ConversationNotFound
from agent.state import LockTimeout
from channels.agent_port import AgentLike, default_agent
from channels.conversation_tokens import ConversationTokens
from channels.dedup import once_store
from channels.deps import Services
from channels.limits import BodySizeLimitMiddleware, rate_limiter
from channels.metrics import RequestMetricsMiddleware, ServiceMetrics
from channels.registry import ADAPTERS
from channels.responses import use_error_schema
from channels.settings import ChannelSettings
from channels.startup import Readiness, ReplicaHeader, StartingGate

log = logging.getLogger("powerdesk.channels")

WEB_DIR = Path(__file__).parent / "web"


def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with the offending field named in Chinese-readable form (e.g. ``body.text``)."""
    errors = [
        {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg", "")}
        for err in exc.errors()
    ]
    fields = "、".join(e["field"] for e in errors)
    return JSONResponse(status_code=422, content={"detail": f"输入有误：{fields}", "errors": errors})


def _agent_input_error(_request: Request, exc: AgentInputError) -> JSONResponse:
    field = str(exc).split(":", 1)[0]
    return JSONResponse(status_code=422, content={"detail": f"输入有误：{exc}", "field": field})


def _conversation_not_found(_request: Request, _exc: ConversationNotFound) -> JSONResponse:
    """A conversation of another channel looks exactly like one that does not exist."""
    return JSONResponse(status_code=404, content={"detail": "会话不存在"})


def _conversation_busy(_request: Request, _exc: LockTimeout) -> JSONResponse:
    """Another turn of this conversation holds its lock (or a killed process did, until the lock
    expires): ask the client to resend the same message id shortly instead of failing it."""
    return JSONResponse(status_code=503, content={"detail": "会话正在处理上一条消息，请稍后重试"},
                        headers={"Retry-After": "5"})


def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL or Redis went away under a request (restart, cut connection): nothing of the turn
    was kept (its transaction rolled back, its state not saved), so the client resends the same
    message id shortly (chat.js does on any 5xx) instead of getting a bare 500."""
    log.warning("a shared store is unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0][:200])
    return JSONResponse(status_code=503, content={"detail": "服务暂时不可用，请稍后重试"},
                        headers={"Retry-After": "2"})


def _unavailable_errors() -> tuple[type[Exception], ...]:
    """The exception types that mean "the database or Redis is unreachable right now"."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import InterfaceError, OperationalError

    return OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError


def create_app(settings: ChannelSettings | None = None, agent: AgentLike | None = None) -> FastAPI:
    settings = settings or ChannelSettings.from_env()
    app = FastAPI(
        title="PowerDesk 电费智能客服",
        version="0.1.0",
        description="网页客服、微信服务号、热线 IVR、坐席辅助与运营指标。",
        docs_url=None,  # served by channels.ops from local files (no CDN)
        redoc_url=None,
    )
    metrics = ServiceMetrics()
    app.state.services = Services(
        settings=settings,
        agent_factory=(lambda: agent) if agent is not None else default_agent,
        limiter=rate_limiter(settings.redis_url, settings.rate_limit_per_minute),
        # Long enough to remember every IVR nonce whose timestamp is still inside the window.
        once=once_store(settings.redis_url,
                        max(settings.dedup_ttl_seconds, 2 * max(settings.ivr_replay_window_seconds,
                                                                  settings.wechat_replay_window_seconds) + 60)),
        metrics=metrics,
        conversation_tokens=ConversationTokens(settings.session_secret, settings.conversation_ttl_seconds),
    )
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(AgentInputError, _agent_input_error)  # type: ignore[arg-type]
    app.add_exception_handler(ConversationNotFound, _conversation_not_found)  # type: ignore[arg-type]
    app.add_exception_handler(LockTimeout, _conversation_busy)  # type: ignore[arg-type]
    for error in _unavailable_errors():
        app.add_exception_handler(error, _store_unavailable)

    app.state.readiness = Readiness()  # "ready": nothing to load unless `serve` starts a warm-up
    app.add_middleware(StartingGate, readiness=app.state.readiness)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.replica_name:
        app.add_middleware(ReplicaHeader, name=settings.replica_name)

    app.include_router(ops.router)
    for adapter in ADAPTERS:  # every customer channel (channels.registry)
        app.include_router(adapter.router)
    app.include_router(assist.router)
    app.include_router(dashboard.router)
    app.include_router(experience.router)
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    app.mount(ops.DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    generated_openapi = app.openapi

    def documented_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            use_error_schema(generated_openapi())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = documented_openapi  # type: ignore[method-assign]

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/static/chat.html")

    return app

