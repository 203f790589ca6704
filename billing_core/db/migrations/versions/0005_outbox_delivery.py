"""The outbox is delivered: lease-based claims, retries with back-off, the provider's answer,
and customers' opt-in to the optional notice kinds (issue 16).

A worker claims a pending row by writing a random `claim_token` and a `claimed_until` lease; a
worker killed mid-batch leaves rows that another takes again after the lease. `attempts` and
`next_attempt_at` drive the exponential back-off; `provider_*` and `last_error` record what the
SMS gateway, WeChat or the mail server answered.

Revision ID: f16b0a7c3e21
Revises: d4e5f6a7b8c9
Create Date: 2026-12-04 01:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f16b0a7c3e21"
down_revision: str | Sequence[str] | None = "d4e5f6a7b8c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("provider_message_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("provider_response", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.create_index("ix_outbox_notifications_claim", ["status", "next_attempt_at"], unique=False)
    op.create_table(
        "notification_opt_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_no", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_opt_ins")),
        sa.UniqueConstraint("account_no", "kind", name=op.f("uq_notification_opt_ins_account_no_kind")),
    )


def downgrade() -> None:
    op.drop_table("notification_opt_ins")
    with op.batch_alter_table("outbox_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_notifications_claim")
        for column in ("last_error", "provider_response", "provider_message_id", "claimed_until",
                       "claim_token", "next_attempt_at", "attempts"):
            batch_op.drop_column(column)
