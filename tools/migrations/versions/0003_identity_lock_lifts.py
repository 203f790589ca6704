"""identity_lock_lifts: staff lifting an identity lock early, with who, when and why.

The lock row stays (its locked_until is moved to the lift); this row keeps the end it had and
the last identity_attempts.id whose wrong answers no longer count towards the same scope and key.

Revision ID: 0003tools
Revises: 0002tools
Create Date: 2026-12-04 04:30:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0003tools'
down_revision: str | Sequence[str] | None = '0002tools'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('identity_lock_lifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lock_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lifted_by', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('was_locked_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts_before', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['lock_id'], ['identity_locks.id'], name=op.f('fk_identity_lock_lifts_lock_id_identity_locks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_lock_lifts')),
    sa.UniqueConstraint('lock_id', name=op.f('uq_identity_lock_lifts_lock_id'))
    )
    with op.batch_alter_table('identity_lock_lifts', schema=None) as batch_op:
        batch_op.create_index('ix_identity_lock_lifts_scope_key', ['scope', 'key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_lock_lifts', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_lock_lifts_scope_key')
    op.drop_table('identity_lock_lifts')
