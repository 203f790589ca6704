"""One open dispute per bill, enforced by a partial unique index.

The open_dispute tool checked for an open twin in code, but SQLite has no row locks: two
simultaneous requests for the same bill could both pass the check and open two tickets. A
partial unique index (SQLite and PostgreSQL both support them) makes the database refuse the
second; the tool turns that refusal into the "already open" answer.

Revision ID: c3d4e5f6a7b8
Revises: b7c1d2e3f4a5
Create Date: 2026-11-23 16:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d4e5f6a7b8"
down_revision: str | Sequence[str] | None = "b7c1d2e3f4a5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_DISPUTE_WHERE = sa.text("kind = 'dispute' AND status IN ('open', 'in_progress')")


def upgrade() -> None:
    op.create_index(
        "uq_work_orders_one_open_dispute_per_bill", "work_orders", ["bill_id"], unique=True,
        sqlite_where=OPEN_DISPUTE_WHERE, postgresql_where=OPEN_DISPUTE_WHERE,
    )


def downgrade() -> None:
    op.drop_index("uq_work_orders_one_open_dispute_per_bill", table_name="work_orders")
