"""High-frequency topics from the turn records: grouped, named, counted, trended; examples masked."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from agent.experience.voc.cli import app
from agent.experience.voc.topics import analyse, topic_report
from tests.agent.experience.voc_world import add_conversation
from tests.agent.world import ACCOUNT_A, ACCOUNT_B, World

BILL = ["这个月电费为什么这么高", "电费比上个月高了好多", "电费怎么突然这么高"]
PAY = ["微信怎么缴费", "在哪里可以交电费", "支付宝能不能缴费"]
OUTAGE = ["我家停电了什么时候恢复", "小区停电了", "停电多久能来电"]


def _seed(world: World) -> None:
    with world.sessions.begin() as session:
        n = 0
        for day, group, times in ((3, BILL, 6), (5, PAY, 3), (9, OUTAGE, 2)):
            for i in range(times):
                for text in group:
                    n += 1
                    add_conversation(session, f"nov-{n}", started_at=datetime(2026, 11, day, 3, tzinfo=UTC),
                                     texts=[text], account_no=ACCOUNT_A if n % 2 else ACCOUNT_B)
        for i in range(4):  # October: bills only, so the bill topic's trend is against 4
            add_conversation(session, f"oct-{i}", started_at=datetime(2026, 10, 20, 3, tzinfo=UTC),
                             texts=[BILL[i % 3]], account_no=ACCOUNT_B)
        add_conversation(session, "nov-short", started_at=datetime(2026, 11, 4, 3, tzinfo=UTC), texts=["是", "8000"])


def test_topics_grouped_named_counted_and_trended(world: World) -> None:
    _seed(world)
    with world.sessions() as session:
        report = topic_report(session, "2026-11", k_range=(2, 6))
    assert report.messages == 18 + 9 + 6  # 「是」/「8000」 are not topics
    assert report.k == 3 and report.silhouette is not None and "轮廓系数" in report.criterion
    biggest = report.topics[0]
    assert biggest.count == 18 and "电费" in biggest.terms
    assert biggest.previous_count == 4 and biggest.trend == "+350%"
    assert {t.count for t in report.topics[1:]} == {9, 6}
    assert any("停电" in t.label for t in report.topics) and any("缴费" in t.label for t in report.topics)


def test_examples_never_show_phone_account_or_name(world: World) -> None:
    with world.sessions.begin() as session:
        for i, text in enumerate([f"我是陈志强，电话13800138000，户号{ACCOUNT_A}，电费为什么这么高",
                                  f"林美玲的身份证440106199001015678，户号{ACCOUNT_B}，停电了", "停电了"]):
            add_conversation(session, f"pii-{i}", started_at=datetime(2026, 11, 12, 3, tzinfo=UTC),
                             account_no=ACCOUNT_A if i == 0 else ACCOUNT_B, texts=[text])
    with world.sessions() as session:
        report = topic_report(session, "2026-11", k_range=(2, 6))
    shown = " ".join(e for t in report.topics for e in t.examples)
    assert "我是陈**，电话138****8000，户号4401****0001" in shown
    assert "林**的身份证440106********5678，户号4401****0002" in shown
    for secret in ("13800138000", ACCOUNT_A, "陈志强", ACCOUNT_B, "林美玲", "199001015678"):
        assert secret not in shown


def test_char_ngram_method_runs_and_names_topics() -> None:
    report = analyse(BILL * 4 + ["停电了", "我家停电了", "小区停电了"] * 3, method="tfidf", k_range=(2, 4))
    assert report.method == "tfidf" and report.messages == 21 and sum(t.count for t in report.topics) == 21
    assert report.k == 2 and any("停电" in term for t in report.topics for term in t.terms)


def test_one_distinct_message_is_one_topic() -> None:
    report = analyse(["停电了"] * 5)
    assert report.k == 1 and report.topics[0].count == 5 and report.topics[0].trend == "新增"


def test_cli_prints_the_table_and_refuses_a_bad_period(world: World, monkeypatch) -> None:
    _seed(world)
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    result = CliRunner().invoke(app, ["topics", "--period", "2026-11", "--k-max", "6"])
    assert result.exit_code == 0, result.output
    assert "# 高频问题分析 2026-11" in result.output and "13800138000" not in result.output
    bad = CliRunner().invoke(app, ["topics", "--period", "2026-13"])
    assert bad.exit_code == 2 and "period" in bad.output

