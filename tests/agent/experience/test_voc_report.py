"""The periodic satisfaction report: figures by channel, intent, class and week; FCR; times; complaints;
negative experiences; Markdown and self-contained HTML; never a customer's 户号, phone, ID or name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from agent.experience.negative.models import NegativeExperience
from agent.experience.voc.cli import app
from agent.experience.voc.report import format_html, format_markdown, satisfaction_report
from agent.models import Outcome
from billing_core.db.models import WorkOrder, WorkOrderKind, WorkOrderPriority, WorkOrderStatus
from tests.agent.experience.voc_world import add_conversation
from tests.agent.world import ACCOUNT_A, ACCOUNT_B, World

NOW = datetime(2026, 12, 20, tzinfo=UTC)
SECRETS = (ACCOUNT_A, ACCOUNT_B, "13800138000", "13900139000", "陈志强", "林美玲", "440106199001011234")


def _seed(world: World) -> None:
    day = datetime(2026, 11, 3, 2, tzinfo=UTC)  # Tuesday of 2026-W45
    with world.sessions.begin() as session:
        add_conversation(session, "r-1", started_at=day, channel="web", account_no=ACCOUNT_A, csat=5, topic="bill_amount",
                         texts=[f"我是陈志强 户号{ACCOUNT_A} 电话13800138000"], latency_ms=1000, minutes=4)
        add_conversation(session, "r-2", started_at=day + timedelta(days=7), channel="wechat", account_no=ACCOUNT_B,
                         csat=2, topic="bill_amount", outcome=Outcome.TICKET, texts=["身份证440106199001011234", "投诉"],
                         latency_ms=3000, minutes=10)
        add_conversation(session, "r-3", started_at=day + timedelta(days=8), channel="wechat", account_no=None, csat=4,
                         topic="payment_channels", texts=["怎么缴费"], latency_ms=2000, minutes=2)
        add_conversation(session, "r-4", started_at=day + timedelta(days=9), channel="web", account_no=None,
                         outcome=Outcome.ABANDONED, texts=["你好"], latency_ms=2000, minutes=1)
        add_conversation(session, "r-oct", started_at=datetime(2026, 10, 5, tzinfo=UTC), channel="web",
                         account_no=ACCOUNT_A, csat=1, texts=["十月"])
        session.add(WorkOrder(no="WO202611100001", kind=WorkOrderKind.COMPLAINT, account_no=ACCOUNT_B,
                              status=WorkOrderStatus.OPEN, priority=WorkOrderPriority.HIGH, title="投诉：服务态度",
                              description="林美玲 13900139000", channel="wechat", created_at=day + timedelta(days=7),
                              payload={"category": "service_attitude"}))
        session.add(NegativeExperience(conversation_id="r-2", channel="wechat", account_no=ACCOUNT_B, cause="low_csat",
                                       causes=["low_csat", "complaint"], evidence=[], opened_at=day + timedelta(days=7),
                                       updated_at=day + timedelta(days=7)))


def test_figures_by_channel_intent_class_and_week(world: World) -> None:
    _seed(world)
    with world.sessions() as session:
        report = satisfaction_report(session, "2026-11", now=NOW)
    assert report.conversations == 4 and report.overall.rated == 3
    assert str(report.overall.mean) == "3.67" and str(report.overall.satisfied_percent) == "66.67"
    channels = {r.label: r for r in report.by_channel}
    assert str(channels["web"].satisfied_percent) == "100.00" and str(channels["wechat"].satisfied_percent) == "50.00"
    intents = {r.label: r for r in report.by_intent}
    assert intents["bill_amount"].rated == 2 and str(intents["bill_amount"].mean) == "3.50"
    classes = {r.label: r.conversations for r in report.by_class}
    assert classes["身份未核实"] == 2 and sum(classes.values()) == 4 and "电价类别" in report.class_source
    assert [r.label for r in report.by_week] == ["2026-W45", "2026-W46"]
    assert report.turns == 5 and str(report.response_avg_seconds) == "2.20" and str(report.response_p90_seconds) == "3.00"
    assert str(report.handling_avg_minutes) == "4.25"
    assert report.fcr.needs == 4 and report.fcr.resolved_first == 2  # r-1 and r-3 resolved, r-2 ticket, r-4 abandoned
    assert report.complaints == [("服务态度", 1)]
    assert report.negative_total == 1 and report.negative_previous_total == 0 and len(report.negative_by_cause) == 2


def test_html_is_self_contained_with_svg_and_nothing_personal(world: World) -> None:
    _seed(world)
    with world.sessions() as session:
        report = satisfaction_report(session, "2026-11", now=NOW, topics=True)
    assert report.topics is not None and report.topics.messages == 5
    assert {v.kind for v in report.indicators} == {"interaction", "perception", "behaviour", "result"}
    html, markdown = format_html(report), format_markdown(report)
    assert html.count("<svg") >= 9 and "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    assert "# 客户满意度报告 2026-11" in markdown and "█" in markdown and "66.67%" in markdown
    assert "## 高频问题" in markdown and "结果指标" in markdown and "<h2>高频问题</h2>" in html
    assert "4401****0001" in markdown  # the topic example quoting a 户号 is there, masked
    for secret in SECRETS:
        assert secret not in html and secret not in markdown


def test_cli_writes_html_and_refuses_a_bad_format(world: World, monkeypatch, tmp_path) -> None:
    _seed(world)
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    target = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--period", "2026-11", "--format", "html", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert CliRunner().invoke(app, ["report", "--period", "2026-11", "--format", "pdf"]).exit_code == 2
