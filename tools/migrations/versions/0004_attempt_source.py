"""identity_attempts.source: the caller number / openid / web address a check came from.

Counted per source (distinct 户号 with wrong answers), so one source trying account after
account is locked although no single 户号 or conversation reaches its own limit.

Revision ID: 0004tools
Revises: 0003tools
Create Date: 2026-12-04 05:00:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0004tools'
down_revision: str | Sequence[str] | None = '0003tools'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('identity_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=128), nullable=True))
        batch_op.create_index('ix_identity_attempts_source_at', ['source', 'attempted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_attempts_source_at')
        batch_op.drop_column('source')
