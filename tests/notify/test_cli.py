"""`powerdesk notify …` (the sub-app the root CLI loads from its entry point): run with no channel configured, status, opt-in."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from channels.notify.cli import app
from tests.notify.conftest import queue_bills
from tests.notify.fake_providers import fake_wechat

runner = CliRunner()


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POWERDESK_DATABASE_URL", db_url)
    for name in ("POWERDESK_WECHAT_APP_SECRET", "POWERDESK_SMS_ACCESS_KEY_SECRET", "POWERDESK_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    return db_url


def test_run_refuses_when_no_channel_is_configured(cli_env: str) -> None:
    result = runner.invoke(app, ["run", "--drain"])
    assert result.exit_code == 2 and "未配置任何发送渠道" in result.output


def test_run_drains_then_status_counts(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    queue_bills(cli_env, 3, "wechat_template", "openid-{i}")
    queue_bills(cli_env, 1, "sms", "13800138000", start=9)
    with fake_wechat() as api:
        monkeypatch.setenv("POWERDESK_WECHAT_APP_SECRET", api.secret)
        monkeypatch.setenv("POWERDESK_WECHAT_APP_ID", api.app_id)
        monkeypatch.setenv("POWERDESK_WECHAT_API_BASE", api.base_url)
        result = runner.invoke(app, ["run", "--drain", "--poll", "0.05"])
    assert result.exit_code == 0, result.output
    assert "sent 3" in result.output and len(api.delivered) == 3
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "pending\t1" in status.output and "sent\t3" in status.output


def test_opt_in_accepts_only_opt_in_kinds(cli_env: str) -> None:
    bad = runner.invoke(app, ["opt-in", "440100000001", "bill_issued"])
    assert bad.exit_code == 2 and "kind" in bad.output
    first = runner.invoke(app, ["opt-in", "440100000001", "anomaly_alert"])
    again = runner.invoke(app, ["opt-in", "440100000001", "anomaly_alert"])
    assert (first.exit_code, again.exit_code) == (0, 0)
    assert "已登记" in first.output and "已订阅过" in again.output


def test_serve_notify_runs_the_worker_in_a_thread(cli_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from channels.serve_cli import _notifier

    queue_bills(cli_env, 2, "wechat_template", "openid-{i}")
    with fake_wechat() as api:
        monkeypatch.setenv("POWERDESK_WECHAT_APP_SECRET", api.secret)
        monkeypatch.setenv("POWERDESK_WECHAT_APP_ID", api.app_id)
        monkeypatch.setenv("POWERDESK_WECHAT_API_BASE", api.base_url)
        worker = _notifier()
        deadline = time.monotonic() + 5
        while len(api.delivered) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.stop()
        worker.close()
    assert len(api.delivered) == 2
