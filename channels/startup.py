"""Start-up of `powerdesk serve`: load the models before customers wait for them, and say so.

Loading takes tens of seconds on a fresh machine (the intent classifier, the knowledge base's
articles and index, the embedder). Each step is logged with what it loaded and how long it took,
and `/healthz` answers 503 `{"status": "starting", …}` until every step is done, so a load
balancer or an orchestrator only sends customers to a ready process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("powerdesk.channels")


@dataclass
class Readiness:
    """Whether this process has loaded what a turn needs (`ready` unless a warm-up is pending)."""

    status: str = "ready"  # "starting" | "ready" | "failed"
    steps: list[dict[str, object]] = field(default_factory=list)
    step: str | None = None  # what is loading now
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self) -> None:
        with self._lock:
            self.status, self.steps, self.step, self.started = "starting", [], None, time.monotonic()

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"status": self.status, "loading": self.step, "steps": list(self.steps),
                    "seconds": round(time.monotonic() - self.started, 1)}


def _step(readiness: Readiness, name: str, load: Callable[[], str]) -> None:
    with readiness._lock:
        readiness.step = name
    log.info("loading %s", name, extra={"step": name})
    started = time.perf_counter()
    detail = load()
    seconds = round(time.perf_counter() - started, 2)
    with readiness._lock:
        readiness.steps.append({"step": name, "seconds": seconds, "detail": detail})
    log.info("loaded %s in %.2f s: %s", name, seconds, detail, extra={"step": name, "seconds": seconds})


def warm_up(application: Any, readiness: Readiness | None = None) -> None:
    """Load the agent, the intent classifier and the knowledge base, logging each with its timing."""
    readiness = readiness or application.state.readiness
    readiness.begin()
    started = time.perf_counter()
    services = application.state.services
    try:
        holder: dict[str, Any] = {}

        def agent() -> str:
            holder["agent"] = services.agent
            return f"brain={getattr(holder['agent'], 'brain', 'local')}"

        def classifier() -> str:
            from agent.nlu import get_classifier

            model = get_classifier()  # every turn is understood locally, whichever brain answers it
            from knowledge_base.embeddings import get_embedder

            return f"embedder={get_embedder().name}, intents={len(model.labels)}"

        def sections() -> str:
            from agent.local_brain import LocalBrain

            LocalBrain.preload()
            return "article sections for template answers"

        def knowledge() -> str:
            build = getattr(holder["agent"], "knowledge", None)
            if not callable(build):
                return "no knowledge base"
            retriever = build()
            retriever.search("电费怎么交")  # the embedder's tokenizer loads on the first query
            chunks = getattr(retriever, "chunks", None) or []
            articles = {getattr(c, "article_id", None) for c in chunks}
            backend = getattr(retriever, "dense_backend", "?")
            return f"articles={len(articles)}, passages={len(chunks)}, index={backend}"

        for name, load in (("agent", agent), ("intent classifier", classifier),
                           ("article sections", sections), ("knowledge base", knowledge)):
            _step(readiness, name, load)
    except Exception:
        with readiness._lock:
            readiness.status, readiness.step = "failed", None
        log.exception("start-up failed")
        raise
    with readiness._lock:
        readiness.status, readiness.step = "ready", None
    log.info("ready in %.1f s", time.perf_counter() - started, extra={"seconds": round(time.perf_counter() - started, 2)})


def warm_up_in_background(application: Any) -> threading.Thread:
    """Warm up in a thread while the server already answers `/healthz` with "starting"."""
    application.state.readiness.begin()

    def run() -> None:
        try:
            warm_up(application)
        except Exception:  # noqa: BLE001 - logged by warm_up; /healthz says "failed"
            pass

    thread = threading.Thread(target=run, name="powerdesk-warm-up", daemon=True)
    thread.start()
    return thread


# Customer turns wait for the models; on the event loop they would hold up /healthz as well.
_TURN_PATHS = ("/wechat", "/ivr/turn")
_STARTING = json.dumps({"detail": "服务正在启动，请稍后重试", "status": "starting"}, ensure_ascii=False).encode()


def _is_turn(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    if scope.get("method") != "POST":
        return False
    return path.startswith(_TURN_PATHS) or (path.startswith("/api/chat/conversations/")
                                            and path.endswith(("/messages", "/csat")))


class StartingGate:
    """503 「服务正在启动」 with Retry-After for customer turns until the warm-up is done."""

    def __init__(self, app: ASGIApp, readiness: Readiness) -> None:
        self.app, self.readiness = app, readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.readiness.status == "ready" or not _is_turn(scope):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"5"),
                                (b"content-length", str(len(_STARTING)).encode())]})
        await send({"type": "http.response.body", "body": _STARTING})


class ReplicaHeader:
    """Adds ``X-PowerDesk-Replica: <name>`` to every HTTP response: which replica behind the load
    balancer answered (logs and tests correlate turns with replicas through it)."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app, self.header = app, (b"x-powerdesk-replica", name.encode("ascii", "replace"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, tagged)
