"""One turn row per (conversation record, message id): a resent message is never recorded twice.

A client resends a message with the same id when its first attempt's answer was lost (a cut
database connection at commit, a replica killed): the unique index lets `record_turn_in` see that
the turn is already recorded (INSERT … ON CONFLICT DO NOTHING). NULL message ids (staff messages,
channels without ids) stay allowed many times: NULLs are distinct in a unique index on SQLite and
PostgreSQL alike.

Rows recorded twice before this revision keep their text; the later copies lose their message id
(set to NULL) so the index can be built, and the first copy stays the message's record, as the
agent now treats it.

Revision ID: 0004turnmsg
Revises: 0003cx
Create Date: 2026-12-04 04:30:00

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004turnmsg'
down_revision: Union[str, Sequence[str], None] = '0003cx'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute(sa.text(
        "UPDATE agent_turns SET message_id = NULL WHERE message_id IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM agent_turns AS earlier WHERE earlier.conversation_pk = agent_turns.conversation_pk "
        "AND earlier.message_id = agent_turns.message_id AND earlier.id < agent_turns.id)"))
    op.create_index('uq_agent_turns_conversation_message', 'agent_turns', ['conversation_pk', 'message_id'],
                    unique=True)


def downgrade() -> None:
    op.drop_index('uq_agent_turns_conversation_message', table_name='agent_turns')
