"""Schema migrations of the agent's record tables (own Alembic chain, `alembic_version_agent`).

Mirrors `billing_core.migrate` and `tools.migrate`: `alembic_config` is the function the
`powerdesk.migrations` entry point hands to `powerdesk db upgrade` (billing runs first).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from billing_core.settings import database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version_agent"


def agent_metadata() -> MetaData:
    """The MetaData holding only the agent's tables (what this chain compares and migrates)."""
    from agent.models import AgentBase

    return AgentBase.metadata


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the agent chain, pointed at `url` (default: the configured DB)."""
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the agent tables of the database at `url` up to `revision`."""
    command.upgrade(alembic_config(url), revision)
