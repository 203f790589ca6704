"""Schema migrations of the agent's record tables (own Alembic chain, `alembic_version_agent`).

The same machinery as billing and tools (`billing_core.db.migration_chain`): `alembic_config` is the
function the `powerdesk.migrations` entry point hands to `powerdesk db upgrade` (billing runs first).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from billing_core.db.migration_chain import MigrationChain


def agent_metadata() -> MetaData:
    """The MetaData holding only the agent's tables (what this chain compares and migrates)."""
    import agent.experience.negative.models  # noqa: F401  (its table is in the agent chain too)
    from agent.experience import models as _experience  # noqa: F401  (its tables join the metadata)
    from agent.models import AgentBase

    return AgentBase.metadata


CHAIN = MigrationChain("agent", Path(__file__).with_name("migrations"), "alembic_version_agent",
                       agent_metadata)
MIGRATIONS_DIR = CHAIN.migrations_dir
VERSION_TABLE = CHAIN.version_table
alembic_config = CHAIN.alembic_config
upgrade = CHAIN.upgrade
current_revision = CHAIN.current_revision
head_revision = CHAIN.head_revision
