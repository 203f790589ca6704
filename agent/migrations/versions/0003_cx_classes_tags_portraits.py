"""Customer experience: staff-set classes, computed tags/classes per customer, portrait runs.

Revision ID: 0003cx
Revises: 0002negative
Create Date: 2026-12-04 01:40:00

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003cx'
down_revision: Union[str, Sequence[str], None] = '0002negative'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('cx_customer_classes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_no', sa.String(length=12), nullable=False),
    sa.Column('class_code', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('set_by', sa.String(length=64), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cx_customer_classes')),
    sa.UniqueConstraint('account_no', name=op.f('uq_cx_customer_classes_account_no'))
    )
    op.create_table('cx_customer_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_no', sa.String(length=12), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('classes', sa.JSON(), nullable=False),
    sa.Column('features', sa.JSON(), nullable=False),
    sa.Column('policy_version', sa.String(length=64), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cluster_no', sa.Integer(), nullable=True),
    sa.Column('portrait_run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cx_customer_profiles')),
    sa.UniqueConstraint('account_no', name=op.f('uq_cx_customer_profiles_account_no'))
    )
    op.create_table('cx_portrait_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('criterion', sa.String(length=200), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.Column('clusters', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cx_portrait_runs'))
    )


def downgrade() -> None:
    op.drop_table('cx_portrait_runs')
    op.drop_table('cx_customer_profiles')
    op.drop_table('cx_customer_classes')
