"""identity_attempts.refused_by_lock: a right answer given while a lock was active.

Such an attempt is refused (the lock holds) but it is not a wrong answer, so it must not count
towards the next lock; staff see it (a right answer during a lock is usually the real owner).

Revision ID: 0002tools
Revises: 0001tools
Create Date: 2026-12-03 10:00:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0002tools'
down_revision: str | Sequence[str] | None = '0001tools'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('identity_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refused_by_lock', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('identity_attempts', schema=None) as batch_op:
        batch_op.drop_column('refused_by_lock')
