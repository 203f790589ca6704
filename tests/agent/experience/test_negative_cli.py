"""`powerdesk cx negative report --week` and `scan` on a migrated database; a bad week exits 2."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from agent.agent import Agent
from agent.experience.negative.cli import app
from tests.agent.world import ACCOUNT_A, World
from tools.models import HandoffRequest, HandoffStatus


def test_bad_week_exits_2_naming_it() -> None:
    result = CliRunner().invoke(app, ["report", "--week", "2026-48"])
    assert result.exit_code == 2 and "week" in result.output


def test_report_and_scan(world: World, make_agent: Callable[..., Agent], monkeypatch: pytest.MonkeyPatch) -> None:
    agent = make_agent()
    agent.handle("cli-1", "web", "你们怎么搞的电费又乱收气死我了")
    agent.handle("cli-1", "web", "是")
    agent.handle("cli-2", "web", f"查电费，户号{ACCOUNT_A}")
    agent.handle("cli-2", "web", "8000")
    agent.rate("cli-2", 1)
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    result = CliRunner().invoke(app, ["report", "--week", "2026-W26"])
    assert result.exit_code == 0, result.output
    assert "# 负面客户体验周报 2026-W26" in result.output and "负面体验：2 起" in result.output
    assert ACCOUNT_A not in result.output and "4401****0001" in result.output
    # scan runs at the wall clock: cli-1's hand-off (at the test world's clock, months ago) is outside
    # the FCR window and cli-2's rating is recorded already; a hand-off waiting 30 minutes now is new.
    with world.sessions.begin() as session:
        session.add(HandoffRequest(no="HO209901010001", conversation_id="cli-3", channel="wechat",
                                   account_no=ACCOUNT_A, reason="customer_asked", summary="转人工",
                                   status=HandoffStatus.WAITING, created_at=datetime.now(UTC) - timedelta(minutes=30),
                                   payload={}))
    first = CliRunner().invoke(app, ["scan"])
    assert first.exit_code == 0 and "新登记 1 起" in first.output
    assert "cli-3\t转人工无人接待\twechat" in first.output
    assert "新登记 0 起" in CliRunner().invoke(app, ["scan"]).output
