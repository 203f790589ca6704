"""Prometheus metrics of one app instance (own registry, so several apps in a test don't clash).

With `powerdesk serve --workers N` every worker is its own process, and a scrape lands on
whichever worker the kernel picks. So `serve` gives each run a fresh `PROMETHEUS_MULTIPROC_DIR`
(emptied at start) before the workers start: prometheus_client then keeps each worker's values
in files there, and `/metrics` adds up all workers' files (`MultiProcessCollector`), so one scrape
sees the whole service. Without the variable (one process, tests) the app's registry is read.

`/metrics` also exports what the database knows about operations (`OpsCollector`): the probe's
latest view of the chat path and the open alerts of `channels/ops_policy.yaml`, for the rules in
`docs/prometheus-alerts.yml`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("powerdesk.channels")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics", "exposition", "prepare_multiprocess_dir"]


def prepare_multiprocess_dir(var_dir: Path, run: str) -> Path:
    """Set `PROMETHEUS_MULTIPROC_DIR` for this serve run (before any worker imports prometheus_client):
    an operator's own directory if set, else `<var>/metrics/<run>`; emptied either way, because
    files of an earlier run would add its counts to this one's."""
    directory = Path(os.environ.get(MULTIPROC_ENV) or var_dir / "metrics" / run)
    if directory.exists():
        for entry in directory.iterdir():
            if entry.is_file() and entry.suffix == ".db":
                entry.unlink()
            elif entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def multiprocess_dir() -> str | None:
    directory = os.environ.get(MULTIPROC_ENV)
    return directory if directory and os.path.isdir(directory) else None


class OpsCollector(Collector):
    """Probe state and open alerts, read from the database at each scrape (two small queries)."""

    def collect(self) -> Iterator[Metric]:
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        from billing_core.db.engine import session_scope
        from channels.models import AvailabilityInterval, OpsAlert
        from channels.ops_policy import load_policy

        up = GaugeMetricFamily("powerdesk_probe_up", "Chat path as the latest probe check saw it (1 up, 0 down)",
                               labels=["target"])
        checked = GaugeMetricFamily("powerdesk_probe_last_check_timestamp_seconds",
                                    "Unix time of the latest probe check", labels=["target"])
        alerts = GaugeMetricFamily("powerdesk_alert_open", "1 while an alert of ops_policy.yaml is open",
                                   labels=["rule", "severity"])
        try:
            with session_scope() as session:
                latest = (select(AvailabilityInterval.target, func.max(AvailabilityInterval.ended_at).label("at"))
                          .group_by(AvailabilityInterval.target).subquery())
                rows = session.execute(select(AvailabilityInterval.target, AvailabilityInterval.status,
                                              AvailabilityInterval.ended_at)
                                       .join(latest, (latest.c.target == AvailabilityInterval.target)
                                             & (latest.c.at == AvailabilityInterval.ended_at))).all()
                open_rules = set(session.scalars(select(OpsAlert.rule).where(OpsAlert.resolved_at.is_(None))))
        except SQLAlchemyError:  # tables not migrated yet, or the database is down: /healthz says so
            return
        for target, status, ended_at in rows:
            up.add_metric([target], 1.0 if status == "up" else 0.0)
            checked.add_metric([target], ended_at.timestamp())
        for rule in load_policy().alerts:
            alerts.add_metric([rule.rule, rule.severity], 1.0 if rule.rule in open_rules else 0.0)
        yield from (up, checked, alerts)


_OPS = CollectorRegistry(auto_describe=False)
_OPS.register(OpsCollector())


def exposition(metrics: ServiceMetrics) -> bytes:
    """The text of one scrape: every worker's request and turn metrics, then the operations gauges."""
    directory = multiprocess_dir()
    if directory is None:
        service = generate_latest(metrics.registry)
    else:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        service = generate_latest(registry)
    return service + generate_latest(_OPS)


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
            if status >= 400 and not (status == 503 and path == "/healthz"):  # "starting" is polled
                log.info("request", extra={"method": scope["method"], "path": scope["path"],
                                           "status": status, "ms": round(elapsed * 1000, 1)})
