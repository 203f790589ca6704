"""Drop ix_agent_turns_conversation_pk: the unique (conversation_pk, message_id) index leads with it.

Every lookup of a conversation's turns (transcripts, the resend check, ON DELETE CASCADE) is
served by uq_agent_turns_conversation_message, whose first column is conversation_pk; the second
index cost a write per recorded turn and its space, and served nothing.

Revision ID: 0005turnidx
Revises: 0004turnmsg
Create Date: 2026-12-04 18:45:00

"""
from collections.abc import Sequence

from alembic import op


revision: str = '0005turnidx'
down_revision: str | Sequence[str] | None = '0004turnmsg'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_agent_turns_conversation_pk', table_name='agent_turns')


def downgrade() -> None:
    op.create_index('ix_agent_turns_conversation_pk', 'agent_turns', ['conversation_pk'], unique=False)
