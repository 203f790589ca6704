"""Every command that needs the tables says "run powerdesk db upgrade" (exit 2) on an unmigrated
database, instead of a raw SQLAlchemy traceback about a missing table."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from billing_core.db.migrate import upgrade as upgrade_billing
from billing_core.db.schema import chain_revisions, require_schema
from billing_core.errors import SchemaNotReadyError

runner = CliRunner()

NEEDS_SCHEMA = [
    ("demo", "seed", "--customers", "3"),
    ("demo", "cycle"),
    ("billing", "run-cycle", "--period", "2026-07", "--no-progress"),
    ("billing", "dun", "--as-of", "2026-09-30"),
    ("billing", "kpi", "--period", "2026-07"),
    ("kpi", "report", "--period", "2026-07"),
    ("chat",),
    ("serve", "--no-warm"),
    ("rasa-actions",),
    ("ops", "alerts", "--once"),
    ("ops", "probe", "--once"),
]


@pytest.fixture(scope="module")
def root_app():  # type: ignore[no-untyped-def]
    from channels import cli

    cli._register_subcommands()
    return cli.app


@pytest.fixture
def fresh_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("POWERDESK_DATABASE_URL", url)
    return url


@pytest.mark.parametrize("args", NEEDS_SCHEMA, ids=lambda a: " ".join(a[:2]))
def test_command_on_an_unmigrated_database_says_run_db_upgrade(root_app, fresh_url: str, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(root_app, list(args))
    assert result.exit_code == 2, result.output
    assert "请先运行 powerdesk db upgrade" in result.stderr and "run powerdesk db upgrade" in result.stderr
    assert "Traceback" not in result.output and "OperationalError" not in result.output


def test_each_command_checks_the_chains_it_needs(root_app, fresh_url: str) -> None:  # type: ignore[no-untyped-def]
    """A billing-only database (upper layers not installed) serves billing commands; chat names what is missing."""
    upgrade_billing(fresh_url)
    require_schema(fresh_url, ("billing",))
    pending = {name for name, at, head in chain_revisions(fresh_url) if at != head}
    assert pending and "billing" not in pending  # tools and agent are not migrated yet
    with pytest.raises(SchemaNotReadyError) as caught:
        require_schema(fresh_url)
    assert all(name in str(caught.value) for name in pending) and "billing" not in str(caught.value)
    assert runner.invoke(root_app, ["demo", "cycle"]).exit_code == 0
    chat = runner.invoke(root_app, ["chat"])
    needed = pending & {"tools", "agent"}  # chat needs these, not the channels' tables
    assert chat.exit_code == 2 and needed and all(name in chat.stderr for name in needed)


def test_a_migrated_database_passes_and_the_command_runs(root_app, fresh_url: str) -> None:  # type: ignore[no-untyped-def]
    assert runner.invoke(root_app, ["db", "upgrade"]).exit_code == 0
    require_schema(fresh_url)  # no error
    result = runner.invoke(root_app, ["demo", "cycle"])
    assert result.exit_code == 0, result.output
    assert "新计算 0 张" in result.stdout
