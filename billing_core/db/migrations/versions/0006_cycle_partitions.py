"""Cycle partitions: a period's customers in id ranges, claimed by cycle workers with a lease.

Written by hand to match billing_core/db/operations_models.py `CyclePartition` (checked by
tests/billing/test_models_db.py); enums as VARCHAR(32), timestamps DateTime(timezone=True).

Revision ID: e5f6a7b8c9d0
Revises: f16b0a7c3e21 (0005_outbox_delivery)
Create Date: 2026-12-04 01:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5f6a7b8c9d0"
down_revision: str | Sequence[str] | None = "f16b0a7c3e21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cycle_partitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("first_customer_id", sa.Integer(), nullable=False),
        sa.Column("last_customer_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("skipped_existing", sa.Integer(), nullable=False),
        sa.Column("bills_computed", sa.Integer(), nullable=False),
        sa.Column("bills_held", sa.Integer(), nullable=False),
        sa.Column("bills_issued", sa.Integer(), nullable=False),
        sa.Column("blocked", sa.Integer(), nullable=False),
        sa.Column("review_work_orders", sa.Integer(), nullable=False),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("verified_existing", sa.Integer(), nullable=False),
        sa.Column("late_fee_bills", sa.Integer(), nullable=False),
        sa.Column("late_fees", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("hits_by_rule", sa.JSON(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycle_partitions")),
        sa.UniqueConstraint("period", "first_customer_id", name=op.f("uq_cycle_partitions_period_first_customer_id")),
    )
    with op.batch_alter_table("cycle_partitions", schema=None) as batch_op:
        batch_op.create_index("ix_cycle_partitions_period_status", ["period", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cycle_partitions", schema=None) as batch_op:
        batch_op.drop_index("ix_cycle_partitions_period_status")
    op.drop_table("cycle_partitions")
