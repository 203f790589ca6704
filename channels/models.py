"""The channel layer's own tables: availability of the chat path (probe intervals) and raised alerts.

Built on billing's `Base` with an own MetaData and an own Alembic chain (`alembic_version_channels`,
`channels/migrations`), as agent and tools do: these are operations facts of the service itself,
owned by the layer that serves and probes it, not agent records.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, MetaData, String
from sqlalchemy.orm import Mapped, mapped_column

from billing_core.db.engine import NAMING_CONVENTION, Base, utc_now


class ChannelsBase(Base):
    """billing_core's `Base` with the channel layer's tables in their own `MetaData`."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AvailabilityInterval(ChannelsBase):
    """A stretch of time the probe saw the chat path `up` or `down`, from `started_at` to the last
    check that confirmed it (`ended_at`). Time between intervals is unmonitored: neither service
    time nor fault time (T/CI 1281 table 1: 故障时长 / 电费服务时长)."""

    __tablename__ = "ops_availability_intervals"
    __table_args__ = (Index("ix_ops_availability_target_ended", "target", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(200))  # the base URL probed
    status: Mapped[str] = mapped_column(String(8))  # "up" | "down"
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    ended_at: Mapped[datetime] = mapped_column(default=utc_now)
    checks: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(String(300))
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)


class OpsAlert(ChannelsBase):
    """An alert of `channels/ops_policy.yaml` while its condition holds; resolved when it stops."""

    __tablename__ = "ops_alerts"
    __table_args__ = (Index("ix_ops_alerts_rule_resolved", "rule", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))  # "warning" | "critical"
    message: Mapped[str] = mapped_column(String(300))
    value: Mapped[str | None] = mapped_column(String(64))  # the observed figure, as shown
    threshold: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(default=utc_now)
    resolved_at: Mapped[datetime | None] = mapped_column()
