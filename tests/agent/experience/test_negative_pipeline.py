"""Negative experiences end to end through `Agent.handle`: each trigger apologises at once, opens
the conversation's 负面体验 record with its cause, offers the policy's remedy and records the answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.agent import Agent, Reply
from agent.experience.negative.models import NegativeExperience
from agent.experience.negative.policy import POLICY_FILE, RemedyPolicyError, load_remedy_policy
from agent.experience.negative.records import scan_records
from agent.experience.negative.report import WeekError, format_markdown, week_bounds, weekly_report
from tests.agent.world import ACCOUNT_A, NOW, World
from tests.billing.conftest import postgres_server  # noqa: F401  (fixture)

ANGRY = "你们怎么搞的电费又乱收气死我了"


def _talk(agent: Agent, cid: str, messages: list[str]) -> list[Reply]:
    return [agent.handle(cid, "web", m) for m in messages]


def _record(world: World, cid: str) -> NegativeExperience | None:
    with world.sessions() as session:
        return session.scalar(select(NegativeExperience).where(NegativeExperience.conversation_id == cid))


def test_anger_gets_an_apology_and_a_person_at_once(world: World, make_agent: Callable[..., Agent]) -> None:
    offer, yes = _talk(make_agent(), "angry-yes", [ANGRY, "是"])
    assert offer.text.startswith("非常抱歉") and offer.awaiting == "remedy" and "人工" in offer.text
    assert offer.actions == []  # no self-service step (no identity question) in the angry turn
    assert yes.handoff and "transfer_to_human" in yes.actions
    row = _record(world, "angry-yes")
    assert row is not None and row.causes == ["negative_emotion"]
    assert (row.remedy, row.remedy_status) == ("priority_handling", "accepted")


def test_declined_offer_serves_the_original_request(world: World, make_agent: Callable[..., Agent]) -> None:
    _, no, _, answer = _talk(make_agent(), "angry-no", [ANGRY, "不用", ACCOUNT_A, "8000"])
    assert no.awaiting == "account_no" and "不为您安排" in no.text
    assert "293.66" in answer.text  # the bill the angry message was about, explained
    row = _record(world, "angry-no")
    assert row is not None and row.remedy_status == "declined" and row.remedy_answered_at is not None


def test_neutral_questions_with_high_and_complaint_words_trigger_nothing(
        world: World, make_agent: Callable[..., Agent]) -> None:
    replies = _talk(make_agent(), "neutral", ["这个月电费有点高帮我看看", ACCOUNT_A, "8000", "投诉电话是多少"])
    assert all("抱歉让您着急" not in r.text for r in replies)
    assert _record(world, "neutral") is None


def test_low_csat_offers_a_call_back_and_records_the_promise(world: World, make_agent: Callable[..., Agent]) -> None:
    replies = _talk(make_agent(), "csat", [f"查电费，户号{ACCOUNT_A}", "8000", "谢谢再见", "1", "是"])
    rated, accepted = replies[-2], replies[-1]
    assert "没能让您满意" in rated.text and "2小时内" in rated.text and rated.awaiting == "remedy"
    assert not rated.closed and accepted.closed and "已为您登记专人回电" in accepted.text
    row = _record(world, "csat")
    assert row is not None and row.cause == "low_csat" and row.remedy_status == "accepted"
    assert row.remedy_due_at is not None and row.remedy_due_at - NOW == timedelta(hours=2)


def test_rating_widget_low_score_opens_a_pending_record(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    _talk(agent, "widget", [f"查电费，户号{ACCOUNT_A}", "8000"])
    assert agent.rate("widget", 2) == 2
    row = _record(world, "widget")
    assert row is not None and row.causes == ["low_csat"] and row.remedy_status == "pending"
    agent.rate("widget", 5)  # a good rating opens nothing further
    assert _record(world, "widget").causes == ["low_csat"]  # type: ignore[union-attr]


def test_complaint_about_the_bill_offers_a_fee_review(world: World, make_agent: Callable[..., Agent]) -> None:
    replies = _talk(make_agent(), "complaint", ["我要投诉", ACCOUNT_A, "8000",
                                                "你们电费计算有差错，多收了我的钱", "是", "不用"])
    opened = next(r for r in replies if r.tickets)
    assert opened.text.startswith("给您带来不好的体验") and opened.awaiting == "remedy"
    row = _record(world, "complaint")
    assert row is not None and "complaint" in row.causes
    assert row.remedy == "fee_review" and row.remedy_status == "declined"
    assert "不为您安排" in replies[-1].text and replies[-1].awaiting is None


def test_identity_lock_out_apologises_and_records(world: World, make_agent: Callable[..., Agent]) -> None:
    replies = _talk(make_agent(), "locked", ["查电费", ACCOUNT_A, "0000", "0001", "0002"])
    assert replies[-1].handoff and "很抱歉给您添麻烦了" in replies[-1].text
    row = _record(world, "locked")
    assert row is not None and row.causes == ["identity_locked"] and row.account_no is None


def test_repeat_contact_on_the_same_topic_within_the_window(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    _talk(agent, "first", [f"查电费，户号{ACCOUNT_A}", "8000"])
    agent.end("first")
    again = _talk(agent, "second", [f"查电费，户号{ACCOUNT_A}", "8000"])[-1]
    assert again.text.startswith("很抱歉让您为同一个问题再次联系我们") and again.awaiting == "remedy"
    assert "293.66" in again.text  # the question is still answered
    assert _record(world, "first") is None
    assert _record(world, "second").causes == ["repeat_contact"]  # type: ignore[union-attr]


def test_handoff_nobody_took_offers_a_call_back(world: World, make_agent: Callable[..., Agent]) -> None:
    clock = {"now": NOW}
    agent = make_agent(clock=lambda: clock["now"])
    first = _talk(agent, "waiting", ["转人工"])[0]
    assert first.handoff
    clock["now"] = NOW + timedelta(minutes=5)
    assert "之前为您转接人工" not in _talk(agent, "waiting", ["还要等多久"])[0].text  # not yet: 10 minutes
    clock["now"] = NOW + timedelta(minutes=20)
    late = _talk(agent, "waiting", ["怎么还没有人理我"])[0]
    assert late.text.startswith("非常抱歉，之前为您转接人工后一直没有客服接待您") and late.awaiting == "remedy"
    with world.sessions.begin() as session:
        assert scan_records(session, NOW + timedelta(minutes=30)) == []  # already recorded in the dialogue
    assert _record(world, "waiting").causes == ["handoff_unanswered"]  # type: ignore[union-attr]


def test_scan_finds_unanswered_handoffs_without_a_turn(world: World, make_agent: Callable[..., Agent]) -> None:
    _talk(make_agent(), "silent", ["转人工"])
    with world.sessions.begin() as session:
        assert scan_records(session, NOW + timedelta(minutes=5)) == []
        found = scan_records(session, NOW + timedelta(minutes=15))
        assert [(r.conversation_id, r.cause, r.remedy_status) for r in found] == [
            ("silent", "handoff_unanswered", "pending")]


def test_weekly_report_counts_by_cause_channel_and_class_masked(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    _talk(agent, "r1", [ANGRY, "是"])
    _talk(agent, "r2", [f"查电费，户号{ACCOUNT_A}，手机13800138000", "8000", "谢谢再见", "1", "是"])
    with world.sessions() as session:
        report = weekly_report(session, "2026-W26", now=NOW + timedelta(days=1))
    assert report.total == 2 and report.by_cause == {"negative_emotion": 1, "low_csat": 1}
    assert report.by_channel == {"web": 2} and report.by_class == {"居民": 1, "身份未核实": 1}
    text = format_markdown(report)
    assert "负面客户体验周报 2026-W26" in text and "| 满意度评价1-2分 | 1 | 50% |" in text
    assert "客户接受率：2/2" in text and "4401****0001" in text  # the call-back is overdue a day later
    assert ACCOUNT_A not in text and "13800138000" not in text
    with world.sessions() as session:
        assert weekly_report(session, "2026-W27").previous_total == 2


def test_bad_week_and_bad_policy_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeekError):
        week_bounds("2026-48")
    start, end = week_bounds("2026-W48")
    assert (start.isoformat(), end - start) == ("2026-11-22T16:00:00+00:00", timedelta(days=7))
    bad = tmp_path / "remedies.yaml"
    good = POLICY_FILE.read_text(encoding="utf-8")
    bad.write_text(good.replace("    within_hours: 2\n", ""), encoding="utf-8")
    with pytest.raises(RemedyPolicyError, match=r"^remedies.yaml: remedies.call_back.within_hours: required"):
        load_remedy_policy(bad)
    bad.write_text(good.replace("remedy: call_back", "remedy: free_money", 1), encoding="utf-8")
    with pytest.raises(RemedyPolicyError, match=r"causes.low_csat.remedy: unknown remedy 'free_money'"):
        load_remedy_policy(bad)
    bad.write_text(good.replace("handoff_unanswered_minutes: 10", "handoff_unanswered_minutes: 0"), encoding="utf-8")
    with pytest.raises(RemedyPolicyError, match=r"remedies.yaml: handoff_unanswered_minutes"):
        load_remedy_policy(bad)


def test_after_a_negative_experience_a_clarification_becomes_the_offer_of_a_person(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    _talk(agent, "loop", [ANGRY, "不用"])  # declined; the bill question now waits for the 户号
    agent.handle("loop", "web", "取消")
    unclear = agent.handle("loop", "web", "呃呃啊啊")
    assert unclear.awaiting == "remedy" and "人工" in unclear.text and "没有完全理解" not in unclear.text
    # once a person is on the way, a clarification stays a clarification (never an empty reply)
    assert agent.handle("loop", "web", "是").handoff
    after = agent.handle("loop", "web", "呃呃")
    assert after.text


@pytest.mark.postgres
def test_a_record_step_whose_connection_is_cut_fails_the_transaction(postgres_server) -> None:  # noqa: F811
    """A failing step is rolled back alone; a cut connection (pg_terminate_backend on the real
    server) is raised, so the turn ends as a 503 instead of a 500 PendingRollbackError at COMMIT."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import sessionmaker

    from agent.experience.negative.pipeline import run_record_steps
    from billing_core.db.engine import make_engine

    url = postgres_server.create_database()
    engine = make_engine(url)
    try:
        sessions = sessionmaker(bind=engine)

        def broken(session) -> None:
            session.execute(text("SELECT no_such_column FROM pg_class"))

        with sessions.begin() as session:
            session.execute(text("CREATE TABLE kept (n int)"))
            run_record_steps(session, [broken, lambda s: s.execute(text("INSERT INTO kept VALUES (1)"))])
        with engine.connect() as connection:
            assert connection.execute(text("SELECT n FROM kept")).scalars().all() == [1]

        def cut(session) -> None:
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

        with pytest.raises(OperationalError) as caught, sessions.begin() as session:
            session.execute(text("INSERT INTO kept VALUES (2)"))
            run_record_steps(session, [cut])
        assert caught.value.connection_invalidated
        with engine.connect() as connection:
            assert connection.execute(text("SELECT n FROM kept")).scalars().all() == [1]
    finally:
        engine.dispose()
        postgres_server.drop_database(url.rsplit("/", 1)[1])
