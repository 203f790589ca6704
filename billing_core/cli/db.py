"""`powerdesk db …`: migrate the database and show where it stands.

Each layer ships its own Alembic chain and registers a function returning its Alembic config
under the `powerdesk.migrations` entry-point group; billing's runs first because upper layers
refer to billing data. This module imports no upper layer: it only loads the entry points.
"""

from __future__ import annotations

import typer
from alembic import command
from sqlalchemy.exc import SQLAlchemyError

from billing_core.db.schema import chain_revisions, migration_chains
from billing_core.settings import database_url

app = typer.Typer(help="数据库：迁移到最新结构、查看当前版本。", no_args_is_help=True)


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
    try:
        for name, at, head in chain_revisions(database_url()):
            state = "最新" if at == head else "待升级"
            typer.echo(f"{name}: 当前 {at or '未初始化'}，最新 {head}（{state}）")
    except SQLAlchemyError as exc:
        typer.echo(f"无法读取数据库版本（POWERDESK_DATABASE_URL）：{exc}", err=True)
        raise typer.Exit(1) from exc
