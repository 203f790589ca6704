"""The voice of the customer over turn records the agent itself wrote (not rows the test inserted)."""

from __future__ import annotations

from sqlalchemy import select

from agent.experience.voc.periods import ZONE, aware
from agent.experience.voc.report import format_markdown, satisfaction_report
from agent.experience.voc.topics import topic_report
from agent.models import ConversationRecord
from tests.agent.world import ACCOUNT_A, World


def test_real_agent_turns_are_analysed(world: World, make_agent) -> None:
    """Conversations through the agent itself (its own turn records), not rows written by the test."""
    agent = make_agent()
    for n, text in enumerate(["我要投诉抄表员态度差", "投诉你们服务态度不好", "转人工", "我要找人工",
                              f"查电费，户号{ACCOUNT_A}", f"查一下电费 户号{ACCOUNT_A}"]):
        agent.handle(f"e2e-{n}", "web", text)
    with world.sessions() as session:
        started = session.scalar(select(ConversationRecord.started_at).where(ConversationRecord.conversation_id == "e2e-0"))
        period = aware(started).astimezone(ZONE).strftime("%Y-%m")  # the recorder stamps the wall clock
        report = topic_report(session, period, k_range=(2, 4))
    assert report.messages == 6 and sum(t.count for t in report.topics) == 6
    shown = " ".join(e for t in report.topics for e in t.examples)
    assert ACCOUNT_A not in shown
    with world.sessions() as session:
        markdown = format_markdown(satisfaction_report(session, period, topics=False))
    assert "| 会话数 | 6 |" in markdown and ACCOUNT_A not in markdown
