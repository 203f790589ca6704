"""Schema migrations of the billing tables (Alembic), runnable from code and the CLI.

The Alembic environment ships inside the package (`billing_core/migrations`), so an installed
PowerDesk migrates its database without a checkout. Billing keeps its own version table,
`alembic_version_billing`, so upper layers can run their own migration chains in the same
database without touching billing's.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData

from billing_core.db import Base, make_engine
from billing_core.settings import database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version_billing"

# Every module that defines billing tables on `Base`. Add yours here, or Alembic (and the
# schema tests) will not see your tables.
MODEL_MODULES: tuple[str, ...] = ("billing_core.models", "billing_core.operations_models")


def billing_metadata() -> MetaData:
    """`Base.metadata` with every billing model module imported (the schema Alembic targets)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return Base.metadata


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the billing chain, pointed at `url` (default: the configured DB)."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)  # read by env.py and `powerdesk db current`
    # ConfigParser treats '%' as interpolation; escape it so passwords with '%' survive.
    config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the billing tables of the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """The billing revision the database is at (None: never migrated)."""
    engine = make_engine(url or database_url())
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
