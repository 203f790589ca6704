"""Prometheus metrics of one app instance (own registry, so several apps in a test don't clash)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


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
