"""The monthly billing cycle: read → compute → verify → issue, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from billing_core.migrate import alembic_config


def test_the_billing_migration_chain_has_a_single_head() -> None:
    """Two revisions on the same parent would make `db upgrade` refuse to run."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, heads
