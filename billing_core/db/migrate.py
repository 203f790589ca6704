"""Schema migrations of the billing tables (Alembic), runnable from code and the CLI.

The Alembic environment ships inside the package (`billing_core/db/migrations`), so an installed
PowerDesk migrates its database without a checkout. Billing keeps its own version table,
`alembic_version_billing`, so upper layers can run their own migration chains in the same
database without touching billing's (see `billing_core.db.migration_chain`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from sqlalchemy import MetaData

from billing_core.db.engine import Base
from billing_core.db.migration_chain import MigrationChain

# Every module that defines billing tables on `Base`. Add yours here, or Alembic (and the
# schema tests) will not see your tables.
MODEL_MODULES: tuple[str, ...] = ("billing_core.db.models", "billing_core.db.operations_models")


def billing_metadata() -> MetaData:
    """`Base.metadata` with every billing model module imported (the schema Alembic targets)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata


CHAIN = MigrationChain("billing", Path(__file__).with_name("migrations"), "alembic_version_billing",
                       billing_metadata)
MIGRATIONS_DIR = CHAIN.migrations_dir
VERSION_TABLE = CHAIN.version_table
alembic_config = CHAIN.alembic_config  # what the `powerdesk.migrations` entry point names
upgrade = CHAIN.upgrade
current_revision = CHAIN.current_revision
head_revision = CHAIN.head_revision
