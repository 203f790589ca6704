"""Service KPIs of table 1 from the agent's records, per channel, next to the billing KPIs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from agent.models import ConversationRecord, Outcome, TurnRecord
from agent.records import Recorder
from billing_core.db.engine import session_factory, session_scope
from channels.kpi import PeriodError, kpi_report, period_bounds, to_csv
from channels.kpi_cli import app as kpi_app

PERIOD = "2025-03"  # no other test writes conversations this early


def _conversation(recorder: Recorder, cid: str, channel: str, account: str, started: datetime, minutes: int,
                  latencies: list[int], outcome: Outcome, csat: int | None) -> None:
    record_id = recorder.start(cid, channel, "local", account, started_at=started)
    for i, latency in enumerate(latencies):
        recorder.record_turn(record_id, user_text=f"问题{i}", reply_text="回复", brain="local",
                             intents=["bill_query"], tool_calls=[], citations=[], latency_ms=latency,
                             account_no=account, topic="bill_query", outcome=outcome)
    recorder.finish(record_id, outcome)
    if csat is not None:
        recorder.record_csat(record_id, csat)
    with session_scope() as session:
        session.execute(update(ConversationRecord).where(ConversationRecord.id == record_id)
                        .values(ended_at=started + timedelta(minutes=minutes)))
        session.execute(update(TurnRecord).where(TurnRecord.conversation_pk == record_id)
                        .values(created_at=started + timedelta(minutes=minutes)))


@pytest.fixture(scope="module")
def recorded(seeded_database: str) -> None:
    recorder = Recorder(session_factory())
    base = datetime(2025, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 China time
    _conversation(recorder, "kpi-web-a", "web", "K00000000001", base, 6, [100, 300], Outcome.RESOLVED, 5)
    _conversation(recorder, "kpi-wechat-b", "wechat", "K00000000002", base + timedelta(hours=1), 10, [200],
                  Outcome.TRANSFERRED, 2)
    # A repeat contact on the same need within 7 days: web conversation a is no longer first-contact resolved.
    _conversation(recorder, "kpi-web-c", "web", "K00000000001", base + timedelta(days=2), 4, [400],
                  Outcome.RESOLVED, None)
    # Outside the period (previous month, China time): never counted.
    _conversation(recorder, "kpi-web-old", "web", "K00000000003", datetime(2025, 2, 28, 15, 0, tzinfo=UTC),
                  60, [9000], Outcome.RESOLVED, 1)


def _by_code(figures: list) -> dict:  # type: ignore[type-arg]
    return {f.code: f for f in figures}


def test_service_kpis_all_channels(recorded: None) -> None:
    with session_scope() as session:
        report = kpi_report(session, PERIOD)
    overall = _by_code(report.service["all"])
    # 4 turns in the period: (100 + 300 + 200 + 400) ms / 4 = 0.25 s
    assert overall["response_time"].value == Decimal("0.25")
    assert overall["response_time"].denominator == 4
    # (6 + 10 + 4) minutes / 3 conversations
    assert overall["handling_time"].value == Decimal("6.67")
    # needs: a (repeated by c → not resolved first), b (transferred) → 0 of 2
    assert overall["first_contact_resolution"].denominator == 2
    assert overall["first_contact_resolution"].value == Decimal("0.00")
    # rated: a=5 (satisfied), b=2 → 50 %
    assert (overall["satisfaction"].numerator, overall["satisfaction"].denominator) == (1, 2)
    assert overall["satisfaction"].value == Decimal("50.00")


def test_service_kpis_per_channel(recorded: None) -> None:
    with session_scope() as session:
        report = kpi_report(session, PERIOD)
    web, wechat, hotline = (_by_code(report.service[c]) for c in ("web", "wechat", "ivr"))
    assert web["response_time"].value == Decimal("0.27")  # (100+300+400)/3 ms
    assert wechat["satisfaction"].value == Decimal("0.00")
    assert wechat["handling_time"].value == Decimal("10.00")
    assert hotline["response_time"].value is None and hotline["satisfaction"].value is None


def test_billing_kpis_are_the_billing_cores(recorded: None) -> None:
    from billing_core.operations.kpi_store import period_kpis

    with session_scope() as session:
        report = kpi_report(session, "2026-08")
        expected = period_kpis(session, "2026-08")
    assert [(f.code, f.value) for f in report.billing] == [(v.code, v.rate_percent) for v in expected]
    assert any(f.value is not None for f in report.billing)


def test_csv_has_one_row_per_figure(recorded: None) -> None:
    with session_scope() as session:
        report = kpi_report(session, PERIOD)
    lines = to_csv(report).strip().splitlines()
    assert lines[0].startswith("账期,类别,渠道")
    assert len(lines) == 1 + len(report.billing) + len(report.platform) + 4 * 5  # all + web, wechat, ivr, alipay
    assert any("一次性问题解决率" in line and "微信服务号" in line for line in lines)


def test_bad_period_is_named() -> None:
    with pytest.raises(PeriodError, match="period"):
        period_bounds("2025-3")
    result = CliRunner().invoke(kpi_app, ["report", "--period", "2025-13"])
    assert result.exit_code == 2
    assert "period" in result.output


def test_cli_prints_the_report(recorded: None) -> None:
    result = CliRunner().invoke(kpi_app, ["report", "--period", PERIOD])
    assert result.exit_code == 0, result.output
    assert "一次性问题解决率" in result.output and "50.00%" in result.output
    with session_scope() as session:
        assert session.scalar(select(ConversationRecord.id)
                              .where(ConversationRecord.conversation_id == "kpi-web-a"))
