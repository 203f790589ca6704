"""`powerdesk chat`: a terminal conversation on a migrated database; bad options exit 2 naming them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from agent.cli import app
from agent.models import ConversationRecord
from tests.agent.world import ACCOUNT_A, World


def test_bad_options_name_the_field() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--account", "12345"])
    assert result.exit_code == 2 and "--account" in result.output
    result = runner.invoke(app, ["--brain", "gpt"])
    assert result.exit_code == 2 and "--brain" in result.output


def test_chat_verifies_and_records(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    result = CliRunner().invoke(app, ["--account", ACCOUNT_A], input="查一下电费\n123X\n退出\n")
    assert result.exit_code == 0, result.output
    assert "身份核实通过" in result.output and "账单" in result.output
    with world.sessions() as session:
        record = session.scalars(select(ConversationRecord)).one()
        assert record.channel == "cli" and record.account_no == ACCOUNT_A and record.ended_at is not None
