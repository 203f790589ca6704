"""Schema migrations of the tools tables (own Alembic chain, version table `alembic_version_tools`).

Mirrors `billing_core.migrate`: the environment ships inside the package, and `alembic_config`
is what the `powerdesk.migrations` entry point hands to `powerdesk db upgrade`, which runs the
billing chain first (the tools tables only refer to billing data by account number).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData

from billing_core.db import make_engine
from billing_core.settings import database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version_tools"


def tools_metadata() -> MetaData:
    """The MetaData of the tools tables only (what this chain compares and migrates)."""
    from tools.models import ToolsBase

    return ToolsBase.metadata


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the tools chain, pointed at `url` (default: the configured DB)."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the tools tables of the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """The tools revision the database is at (None: never migrated)."""
    engine = make_engine(url or database_url())
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest tools revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
