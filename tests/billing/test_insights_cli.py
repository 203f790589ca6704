"""`powerdesk insights show | scan` on the seeded demo."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from billing_core.cli.insights import app
from billing_core.db.engine import make_engine
from billing_core.db.models import Customer
from billing_core.demo.seed import SeedSummary
from tests.billing.insights_fixtures import demo_database  # noqa: F401
from sqlalchemy.orm import Session

runner = CliRunner()


def test_show_and_scan(demo_database: tuple[str, SeedSummary], monkeypatch: pytest.MonkeyPatch) -> None:
    url, summary = demo_database
    monkeypatch.setenv("POWERDESK_DATABASE_URL", url)
    engine = make_engine(url)
    with Session(engine) as session:
        account = session.scalar(select(Customer.account_no).order_by(Customer.id))
    engine.dispose()
    shown = runner.invoke(app, ["show", "--account", account, "--today", "2026-10-20"])
    assert shown.exit_code == 0, shown.output
    assert "2026-10 月截至 2026-10-19" in shown.output and "预测方法" in shown.output
    as_json = runner.invoke(app, ["show", "--account", account, "--today", "2026-10-20", "--json"])
    data = json.loads(as_json.output)
    assert data["forecast"]["period"] == "2026-10" and data["forecast"]["bill"]["total"]
    missing = runner.invoke(app, ["show", "--account", "000000000000"])
    assert missing.exit_code == 2 and "--account" in missing.output
    bad_day = runner.invoke(app, ["show", "--account", account, "--today", "20261020"])
    assert bad_day.exit_code == 2 and "--today" in bad_day.output
    scanned = runner.invoke(app, ["scan", "--today", "2026-11-01"])
    assert scanned.exit_code == 0, scanned.output
    assert f"{summary.backwards_accounts[0]}\treading_backwards" in scanned.output
    assert "共 " in scanned.output
