"""Schema migrations of the tools tables (own Alembic chain, version table `alembic_version_tools`).

The same machinery as billing (`billing_core.db.migration_chain`): the environment ships inside the
package, and `alembic_config` is what the `powerdesk.migrations` entry point hands to
`powerdesk db upgrade`, which runs the billing chain first (the tools tables only refer to
billing data by account number).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from billing_core.db.migration_chain import MigrationChain


def tools_metadata() -> MetaData:
    """The MetaData of the tools tables only (what this chain compares and migrates)."""
    from tools.models import ToolsBase

    return ToolsBase.metadata


CHAIN = MigrationChain("tools", Path(__file__).with_name("migrations"), "alembic_version_tools",
                       tools_metadata)
MIGRATIONS_DIR = CHAIN.migrations_dir
VERSION_TABLE = CHAIN.version_table
alembic_config = CHAIN.alembic_config
upgrade = CHAIN.upgrade
current_revision = CHAIN.current_revision
head_revision = CHAIN.head_revision
