"""One layer's Alembic chain: its environment directory, version table and the tables it owns.

Billing, tools and agent each migrate their own tables in the same database, under their own
version table, so no chain ever sees another layer's tables as "to drop". This module holds the
machinery they share: `MigrationChain` (config, upgrade, current/head revision) and `run_env`,
the whole body of each chain's `migrations/env.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData

from billing_core.db.engine import make_engine
from billing_core.settings import database_url


@dataclass(frozen=True)
class MigrationChain:
    name: str
    migrations_dir: Path
    version_table: str
    metadata: Callable[[], MetaData]  # the MetaData of this chain's tables only

    def alembic_config(self, url: str | None = None) -> Config:
        """An Alembic config for this chain, pointed at `url` (default: the configured DB)."""
        config = Config(str(self.migrations_dir / "alembic.ini"))
        config.set_main_option("script_location", str(self.migrations_dir))
        config.set_main_option("version_table", self.version_table)  # read by `powerdesk db current`
        # ConfigParser treats '%' as interpolation; escape it so passwords with '%' survive.
        config.set_main_option("sqlalchemy.url", (url or database_url()).replace("%", "%%"))
        return config

    def upgrade(self, url: str | None = None, revision: str = "head") -> None:
        """Bring this chain's tables in the database at `url` up to `revision`."""
        command.upgrade(self.alembic_config(url), revision)

    def current_revision(self, url: str | None = None) -> str | None:
        """The revision of this chain the database is at (None: never migrated)."""
        engine = make_engine(url or database_url())
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"version_table": self.version_table})
                return context.get_current_revision()
        finally:
            engine.dispose()

    def head_revision(self) -> str | None:
        """The newest revision of this chain shipped with this code."""
        return ScriptDirectory.from_config(self.alembic_config("sqlite://")).get_current_head()


def run_env(chain: MigrationChain) -> None:
    """Run Alembic for `chain`; called from its `migrations/env.py` while Alembic executes it."""
    from alembic import context

    config = context.config
    if config.config_file_name is not None and config.attributes.get("configure_logging", True):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    target_metadata = chain.metadata()

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        # Compare only this chain's tables: other layers' tables share the database.
        return name in target_metadata.tables if type_ == "table" else True

    def configure(**kwargs: Any) -> None:
        context.configure(
            target_metadata=target_metadata,
            version_table=chain.version_table,
            include_name=include_name,
            compare_type=True,
            compare_server_default=True,
            render_as_batch=True,  # SQLite alters tables by copying them
            **kwargs,
        )

    def run_on(connection: Connection) -> None:
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()

    url = config.get_main_option("sqlalchemy.url") or database_url()
    if context.is_offline_mode():
        configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
        with context.begin_transaction():
            context.run_migrations()
        return
    lent = config.attributes.get("connection")
    if lent is not None:  # a caller (e.g. a test) lends its own connection
        run_on(lent)
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()
