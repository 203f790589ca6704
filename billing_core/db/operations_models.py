"""Tables of the monthly billing operations: cycle runs, the notification outbox, bank statements,
dunning actions and late-fee accruals. Same `Base` as `models`, same migration chain.

They record what the operations did, so each step can be re-run safely (a cycle, a dunning pass
or a statement import that already happened is recognised and changes nothing) and so the KPIs
of T/CI 1281 table 1 can be counted from the database.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from billing_core.db.engine import Base, utc_now
from billing_core.db.models import MONEY, _enum


class CycleRunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


class CycleRun(Base):
    """One monthly billing cycle: what it found, computed, held and issued (one per period)."""

    __tablename__ = "cycle_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(7), unique=True)
    status: Mapped[CycleRunStatus] = mapped_column(_enum(CycleRunStatus), default=CycleRunStatus.RUNNING)
    issue_date: Mapped[date] = mapped_column(Date)
    customers: Mapped[int] = mapped_column(Integer, default=0)  # 应抄表 / 应发行
    bills_computed: Mapped[int] = mapped_column(Integer, default=0)
    bills_held: Mapped[int] = mapped_column(Integer, default=0)
    bills_issued: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)  # no bill: readings need review first
    skipped_existing: Mapped[int] = mapped_column(Integer, default=0)  # already had a bill
    review_work_orders: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column()


class PartitionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"  # claimed by `claimed_by` until `lease_until`
    DONE = "done"
    FAILED = "failed"  # set aside after `max_attempts` with the reason in `error`


class CyclePartition(Base):
    """One chunk of a period's customers (an id range), claimed by one cycle worker at a time.

    Workers claim with `SELECT … FOR UPDATE SKIP LOCKED`; a claim is a lease, so a worker that
    dies leaves its partition to be taken over when the lease runs out. What the chunk did is
    stored on the row in the same transaction that wrote its bills, so the run's totals are the
    sum of its done partitions.
    """

    __tablename__ = "cycle_partitions"
    __table_args__ = (
        UniqueConstraint("period", "first_customer_id"),
        Index("ix_cycle_partitions_period_status", "period", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(7))
    first_customer_id: Mapped[int] = mapped_column(Integer)
    last_customer_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[PartitionStatus] = mapped_column(_enum(PartitionStatus), default=PartitionStatus.PENDING)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    skipped_existing: Mapped[int] = mapped_column(Integer, default=0)
    bills_computed: Mapped[int] = mapped_column(Integer, default=0)
    bills_held: Mapped[int] = mapped_column(Integer, default=0)
    bills_issued: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    review_work_orders: Mapped[int] = mapped_column(Integer, default=0)
    notifications: Mapped[int] = mapped_column(Integer, default=0)
    verified_existing: Mapped[int] = mapped_column(Integer, default=0)
    late_fee_bills: Mapped[int] = mapped_column(Integer, default=0)
    late_fees: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    hits_by_rule: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    finished_at: Mapped[datetime | None] = mapped_column()


class NotificationChannel(StrEnum):
    SMS = "sms"
    WECHAT_TEMPLATE = "wechat_template"  # 微信模板消息
    EMAIL = "email"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # waiting, or claimed by a worker until `claimed_until`
    SENT = "sent"  # the provider accepted it (`provider_message_id`, `provider_response`)
    FAILED = "failed"  # refused for good, or given up after the retry limit (`last_error`)
    SKIPPED = "skipped"  # an opt-in kind the customer never asked for: never sent


class OutboxNotification(Base):
    """A message waiting for a channel to deliver it (the outbox pattern: written with the data
    change in one transaction, sent later, at most once per `dedupe_key`)."""

    __tablename__ = "outbox_notifications"
    __table_args__ = (
        Index("ix_outbox_notifications_status", "status"),
        Index("ix_outbox_notifications_claim", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(96), unique=True)
    channel: Mapped[NotificationChannel] = mapped_column(_enum(NotificationChannel))
    kind: Mapped[str] = mapped_column(String(32))  # bill_issued, dunning_reminder, ...
    account_no: Mapped[str] = mapped_column(String(12), index=True)
    bill_id: Mapped[int | None] = mapped_column(ForeignKey("bills.id"))
    recipient: Mapped[str | None] = mapped_column(String(128))  # phone, openid or e-mail
    template: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the Chinese text, every figure from the billing core
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[NotificationStatus] = mapped_column(
        _enum(NotificationStatus), default=NotificationStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column()
    # Delivery state (the outbox worker, `operations.outbox`): a claim is a lease, so a worker that
    # dies mid-batch leaves rows another worker takes again once `claimed_until` has passed.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()  # back-off / quiet hours / daily cap
    claim_token: Mapped[str | None] = mapped_column(String(36))
    claimed_until: Mapped[datetime | None] = mapped_column()
    provider_message_id: Mapped[str | None] = mapped_column(String(128))
    provider_response: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the provider's last answer
    last_error: Mapped[str | None] = mapped_column(Text)


class NotificationOptIn(Base):
    """A customer's consent to an opt-in notice kind (anomaly alerts, forecast warnings): without a
    row here such notices are written but skipped, never sent."""

    __tablename__ = "notification_opt_ins"
    __table_args__ = (UniqueConstraint("account_no", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_no: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32), default="customer")  # where consent was given
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class StatementImport(Base):
    """One bank statement file imported (its SHA-256 makes a second import of it a no-op)."""

    __tablename__ = "bank_statement_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    imported_at: Mapped[datetime] = mapped_column(default=utc_now)
    first_value_date: Mapped[date | None] = mapped_column(Date)
    last_value_date: Mapped[date | None] = mapped_column(Date)
    total_lines: Mapped[int] = mapped_column(Integer)
    matched_lines: Mapped[int] = mapped_column(Integer)
    exception_lines: Mapped[int] = mapped_column(Integer)
    set_aside_lines: Mapped[int] = mapped_column(Integer)
    missing_receipts: Mapped[int] = mapped_column(Integer, default=0)  # payments with no bank line


class StatementLineStatus(StrEnum):
    MATCHED = "matched"
    AMOUNT_MISMATCH = "amount_mismatch"
    DUPLICATE_DEDUCTION = "duplicate_deduction"
    UNRECORDED_RECEIPT = "unrecorded_receipt"
    UNKNOWN_BILL = "unknown_bill"
    SET_ASIDE = "set_aside"  # unreadable line: bad date, amount, account...


class StatementLineRow(Base):
    """Every line of an imported statement, matched or not, with the reason when not."""

    __tablename__ = "bank_statement_lines"
    __table_args__ = (
        UniqueConstraint("import_id", "line_no"),
        Index("ix_bank_statement_lines_value_date", "value_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("bank_statement_imports.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    raw: Mapped[str] = mapped_column(Text)
    bank_txn_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # NULL when set aside
    value_date: Mapped[date | None] = mapped_column(Date)
    account_no: Mapped[str | None] = mapped_column(String(12))
    bill_no: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    channel: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[StatementLineStatus] = mapped_column(_enum(StatementLineStatus))
    reason: Mapped[str] = mapped_column(Text, default="")
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))


class DunningAction(Base):
    """A dunning step taken for a bill: each tier once per bill."""

    __tablename__ = "dunning_actions"
    __table_args__ = (UniqueConstraint("bill_id", "tier"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"))
    tier: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[date] = mapped_column(Date)
    days_overdue: Mapped[int] = mapped_column(Integer)
    amount_owed: Mapped[Decimal] = mapped_column(MONEY)
    late_fee: Mapped[Decimal] = mapped_column(MONEY)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class LateFeeAccrual(Base):
    """The late fee of a bill as counted on a day (the latest row is what is owed).

    `billed_bill_id` is the later bill that charged this count (违约金 line, `operations.late_fees`);
    set in the cycle's transaction only where still NULL, so a fee is billed once.
    """

    __tablename__ = "late_fee_accruals"
    __table_args__ = (UniqueConstraint("bill_id", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"))
    as_of: Mapped[date] = mapped_column(Date)
    principal: Mapped[Decimal] = mapped_column(MONEY)
    days: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    explanation: Mapped[str] = mapped_column(Text)
    billed_bill_id: Mapped[int | None] = mapped_column(ForeignKey("bills.id"), index=True)


__all__ = [
    "CycleRun",
    "CycleRunStatus",
    "DunningAction",
    "LateFeeAccrual",
    "NotificationChannel",
    "NotificationOptIn",
    "NotificationStatus",
    "OutboxNotification",
    "StatementImport",
    "StatementLineRow",
    "StatementLineStatus",
]
