"""The tools chain creates exactly the tools models, next to billing's tables, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, inspect

from billing_core.db.engine import make_engine
from billing_core.db.schema import migration_chains
from billing_core.db.migrate import upgrade as upgrade_billing
from tools.migrate import VERSION_TABLE, current_revision, head_revision, tools_metadata, upgrade
from tools.models import TOOLS_TABLES


def _diff(url: str, metadata: MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, type_, _p: type_ != "table" or name in metadata.tables,
                },
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_upgrade_gives_exactly_the_tools_models(empty_database_url: str) -> None:
    upgrade_billing(empty_database_url)
    assert current_revision(empty_database_url) is None
    upgrade(empty_database_url)
    assert current_revision(empty_database_url) == head_revision()
    tables = set(inspect(make_engine(empty_database_url)).get_table_names())
    assert TOOLS_TABLES | {VERSION_TABLE} <= tables
    assert "alembic_version_billing" in tables  # billing's chain untouched, its own version table
    assert _diff(empty_database_url, tools_metadata()) == []


def test_a_model_change_without_a_revision_is_detected(database_url: str) -> None:
    drifted = MetaData()
    for table in tools_metadata().tables.values():
        table.to_metadata(drifted)
    drifted.tables["handoff_requests"].append_column(Column("queue", String(16)))
    assert any("queue" in str(change) for change in _diff(database_url, drifted))


def test_db_upgrade_discovers_the_tools_chain_after_billing() -> None:
    names = [name for name, _config in migration_chains("sqlite://")]
    assert names[0] == "billing"
    assert "tools" in names
    config = dict(migration_chains("sqlite://"))["tools"]
    assert config.get_main_option("version_table") == VERSION_TABLE


def test_powerdesk_db_upgrade_runs_billing_then_tools(empty_database_url: str, monkeypatch) -> None:
    from typer.testing import CliRunner

    from billing_core.cli.db import app

    monkeypatch.setenv("POWERDESK_DATABASE_URL", empty_database_url)
    result = CliRunner().invoke(app, ["upgrade"])
    assert result.exit_code == 0, result.output
    lines = [line.split(":")[0] for line in result.output.splitlines() if "已升级" in line]
    assert lines[0] == "billing" and "tools" in lines
    assert current_revision(empty_database_url) == head_revision()
    assert _diff(empty_database_url, tools_metadata()) == []
