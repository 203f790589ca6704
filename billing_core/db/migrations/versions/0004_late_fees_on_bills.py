"""Late fees go on the customer's next bill: each accrual remembers the bill that charged it.

`late_fee_accruals.billed_bill_id` is set by the billing cycle in the same transaction that
writes the 违约金 line, and only where it is still NULL, so neither a re-run of the cycle nor
of dunning can bill the same count twice.

Revision ID: d4e5f6a7b8c9
Revises: c3d4e5f6a7b8
Create Date: 2026-11-23 18:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4e5f6a7b8c9"
down_revision: str | Sequence[str] | None = "c3d4e5f6a7b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("late_fee_accruals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billed_bill_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_late_fee_accruals_billed_bill_id"), ["billed_bill_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_late_fee_accruals_billed_bill_id_bills"), "bills", ["billed_bill_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("late_fee_accruals", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_late_fee_accruals_billed_bill_id_bills"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_late_fee_accruals_billed_bill_id"))
        batch_op.drop_column("billed_bill_id")
