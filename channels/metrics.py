"""Prometheus metrics of one app instance (own registry, so several apps in a test don't clash)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("powerdesk.channels")


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("powerdesk_http_requests", "HTTP requests handled",
                                ["method", "route", "status"], registry=self.registry)
        self.request_seconds = Histogram("powerdesk_http_request_seconds", "HTTP request latency",
                                         ["route"], registry=self.registry,
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5))
        self.turns = Counter("powerdesk_turns", "Agent turns answered", ["channel"], registry=self.registry)
        self.turn_seconds = Histogram(
            "powerdesk_turn_seconds", "Agent turn latency", ["channel"], registry=self.registry,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 4.5, 10))
        self.duplicates = Counter("powerdesk_duplicate_messages", "Resent messages answered once",
                                  ["channel"], registry=self.registry)
        self.rate_limited = Counter("powerdesk_rate_limited", "Requests refused by the rate limit",
                                    ["channel"], registry=self.registry)
        self.handoffs = Counter("powerdesk_handoffs", "Conversations handed to a person", ["channel"],
                                registry=self.registry)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by route template; logs the ones that fail (>= 400).

    Plain ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs each
    response through an extra task and memory stream, which cost more than the metrics themselves.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.request_seconds.labels(path).observe(elapsed)
            if status >= 400:
                log.info("request", extra={"method": scope["method"], "path": scope["path"],
                                           "status": status, "ms": round(elapsed * 1000, 1)})
