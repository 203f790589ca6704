"""The customer-experience tables (guide §5.1, §8.3, §8.6): staff-set 重要客户 classes, the tags
and derived classes computed from the records, and the portrait runs.

On the agent's `AgentBase` (its own MetaData and Alembic chain); customers are referred to by
`account_no`, as in the conversation records, never by a foreign key into billing's tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agent.models import AgentBase
from billing_core.db.engine import utc_now


class CustomerClassAssignment(AgentBase):
    """A class staff set on a customer (表1 高可靠性客户: 特级/一级/二级重要客户): who set it and why.

    One row per customer: setting another level replaces it; every change is in the audit log."""

    __tablename__ = "cx_customer_classes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_no: Mapped[str] = mapped_column(String(12), unique=True)
    class_code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(default=utc_now)


class CustomerProfile(AgentBase):
    """One customer's computed tags, derived classes, features and portrait cluster.

    `tags` is a list of {dimension, code, label, value, evidence: [{kind, ids}]}: each tag names the
    records that made it. Rewritten whole by `powerdesk cx tags refresh`."""

    __tablename__ = "cx_customer_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_no: Mapped[str] = mapped_column(String(12), unique=True)
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)  # derived class codes
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    policy_version: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime] = mapped_column(default=utc_now)
    cluster_no: Mapped[int | None] = mapped_column(Integer)
    portrait_run_id: Mapped[int | None] = mapped_column(Integer)


class PortraitRun(AgentBase):
    """One clustering of the customers: k, how it was chosen, and each cluster's Chinese description."""

    __tablename__ = "cx_portrait_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(default=utc_now)
    customers: Mapped[int] = mapped_column(Integer)
    k: Mapped[int] = mapped_column(Integer)
    criterion: Mapped[str] = mapped_column(String(200))
    score: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # k -> criterion value
    clusters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


CX_TABLES: frozenset[str] = frozenset({"cx_customer_classes", "cx_customer_profiles", "cx_portrait_runs"})
