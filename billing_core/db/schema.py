"""Is the database migrated? One check every command that needs the tables runs first.

Without it, a command on a fresh or out-of-date database (`powerdesk demo seed` before
`powerdesk db upgrade`) died in a raw SQLAlchemy traceback about a missing table. Each layer's
Alembic chain is registered under the `powerdesk.migrations` entry points (billing first), so the
check sees every layer's tables without importing a layer above this one.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from billing_core.db.engine import make_engine
from billing_core.db.migrate import alembic_config
from billing_core.errors import SchemaNotReadyError
from billing_core.settings import database_url

UPGRADE_HINT = "请先运行 powerdesk db upgrade（run powerdesk db upgrade）"


def migration_chains(url: str) -> list[tuple[str, Config]]:
    """(name, Alembic config) of every registered chain, billing first, then by name."""
    chains: dict[str, Config] = {"billing": alembic_config(url)}
    for entry in sorted(entry_points(group="powerdesk.migrations"), key=lambda e: e.name):
        if entry.name != "billing":
            chains[entry.name] = entry.load()(url)
    return list(chains.items())


def chain_revisions(url: str | None = None) -> list[tuple[str, str | None, str | None]]:
    """(chain, revision the database is at or None, newest revision shipped) for every chain."""
    url = url or database_url()
    chains = migration_chains(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = []
            for name, config in chains:
                table = config.get_main_option("version_table")
                opts = {"version_table": table} if table else {}
                at = MigrationContext.configure(connection, opts=opts).get_current_revision()
                found.append((name, at, ScriptDirectory.from_config(config).get_current_head()))
            return found
    finally:
        engine.dispose()


def require_schema(url: str | None = None, chains: tuple[str, ...] | None = None) -> None:
    """Raise SchemaNotReadyError (naming the chains) unless each of `chains` (default: every
    registered chain) is at its newest revision. A billing command names ("billing",): it
    works on a database whose upper layers are not installed."""
    pending = [name for name, at, head in chain_revisions(url) if at != head and (chains is None or name in chains)]
    if pending:
        raise SchemaNotReadyError(
            f"数据库结构未初始化或不是最新版本（待升级：{'、'.join(pending)}），{UPGRADE_HINT}", field="database"
        )
