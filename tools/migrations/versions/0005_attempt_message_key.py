"""identity_attempts.message_key: a message run again reuses its attempt instead of counting twice.

A message whose first run's reply was lost (a replica killed after the check, a reply store that
lost it) is run again when the client resends it; its wrong answer was counted a second time,
so a customer could be locked out after two real tries of three.

Revision ID: 0005tools
Revises: 0004tools
Create Date: 2026-12-04 18:30:00

"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0005tools'
down_revision: str | Sequence[str] | None = '0004tools'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('identity_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_key', sa.String(length=64), nullable=True))
        batch_op.create_index('uq_identity_attempts_conversation_message', ['conversation_id', 'message_key'],
                              unique=True)


def downgrade() -> None:
    with op.batch_alter_table('identity_attempts', schema=None) as batch_op:
        batch_op.drop_index('uq_identity_attempts_conversation_message')
        batch_op.drop_column('message_key')
