"""`powerdesk db …`: migrate the database and show where it stands.

Each layer ships its own Alembic chain and registers a function returning its Alembic config
under the `powerdesk.migrations` entry-point group; billing's runs first because upper layers
refer to billing data. This module imports no upper layer: it only loads the entry points.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError

from billing_core.db.engine import make_engine
from billing_core.db.migrate import alembic_config
from billing_core.settings import database_url

app = typer.Typer(help="数据库：迁移到最新结构、查看当前版本。", no_args_is_help=True)


def migration_chains(url: str) -> list[tuple[str, Config]]:
    """(name, Alembic config) of every registered chain, billing first, then by name."""
    chains: dict[str, Config] = {"billing": alembic_config(url)}
    for entry in sorted(entry_points(group="powerdesk.migrations"), key=lambda e: e.name):
        if entry.name != "billing":
            chains[entry.name] = entry.load()(url)
    return list(chains.items())


def _current(config: Config, url: str) -> str | None:
    """The revision the database is at for this chain (its version table names the chain)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            table = config.get_main_option("version_table")
            opts = {"version_table": table} if table else {}
            return MigrationContext.configure(connection, opts=opts).get_current_revision()
    finally:
        engine.dispose()


@app.command()
def upgrade(revision: str = typer.Option("head", help="目标版本（默认最新）")) -> None:
    """把数据库结构升级到最新版本（账务表先行）。"""
    url = database_url()
    try:
        for name, config in migration_chains(url):
            command.upgrade(config, revision)
            typer.echo(f"{name}: 已升级到 {revision}")
    except SQLAlchemyError as exc:
        typer.echo(f"数据库升级失败（POWERDESK_DATABASE_URL）：{exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def current() -> None:
    """显示各模块数据库结构的当前版本与最新版本。"""
    url = database_url()
    try:
        for name, config in migration_chains(url):
            head = ScriptDirectory.from_config(config).get_current_head()
            at = _current(config, url)
            state = "最新" if at == head else "待升级"
            typer.echo(f"{name}: 当前 {at or '未初始化'}，最新 {head}（{state}）")
    except SQLAlchemyError as exc:
        typer.echo(f"无法读取数据库版本（POWERDESK_DATABASE_URL）：{exc}", err=True)
        raise typer.Exit(1) from exc
