"""Differentiated service end to end (guide §8.7, classification.yaml): an important customer's
complaint gets its class's shorter SLA and named 客户经理 queue, and is offered a person at once; a
customer calling again about the same bill is offered a person at once — each compared with the
same conversation of an ordinary customer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from agent.agent import Agent, Reply
from agent.experience.classes import set_staff_class
from agent.experience.policy import load_policy
from agent.replies import render
from billing_core.db.models import WorkOrder, WorkOrderPriority
from tests.agent.world import ACCOUNT_A, NOW, World

COMPLAINT = ["我要投诉", f"户号{ACCOUNT_A}，尾号123X", "营业厅的人办事太慢了，拖了两个星期都没处理", "是的"]


def _talk(agent: Agent, conversation_id: str, messages: list[str]) -> list[Reply]:
    return [agent.handle(conversation_id, "web", text) for text in messages]


def _complaint(world: World) -> WorkOrder:
    with world.sessions() as session:
        return session.scalars(select(WorkOrder)).one()


def test_an_ordinary_customers_complaint_keeps_the_standard_24_hours(world: World,
                                                                     make_agent: Callable[..., Agent]) -> None:
    replies = _talk(make_agent(), "cx-plain", COMPLAINT)
    assert replies[3].outcome == "ticket"
    assert "转人工" not in replies[1].text  # no class: nothing offered at verification
    order = _complaint(world)
    assert order.sla_due_at == NOW + timedelta(hours=24)
    assert order.priority == WorkOrderPriority.HIGH and "queue" not in order.payload
    assert "reply_channel" not in order.payload and "微信服务号推送" not in replies[3].text


def test_an_important_customers_complaint_gets_the_class_sla_and_the_named_queue(
        world: World, make_agent: Callable[..., Agent]) -> None:
    policy = load_policy()
    vip = policy.by_code("vip_1")
    with world.sessions.begin() as session:
        set_staff_class(session, ACCOUNT_A, "vip_1", "市第一人民医院，中断供电危及生命", "王敏")
    replies = _talk(make_agent(), "cx-vip", COMPLAINT)
    # Offered a person as soon as verified, and still asked for the complaint (the question comes last).
    assert "一级重要客户" in replies[1].text and "转人工" in replies[1].text
    assert replies[1].awaiting == "description" and "转人工客服" in replies[1].choices
    assert replies[1].text.index("一级重要客户") < replies[1].text.index("请说明您要投诉")
    assert replies[3].outcome == "ticket" and vip.service.complaint_queue in replies[3].text
    order = _complaint(world)
    assert order.sla_due_at == NOW + timedelta(hours=vip.service.complaint_contact_hours)
    assert order.priority == WorkOrderPriority.URGENT
    assert order.payload["queue"] == vip.service.complaint_queue
    assert order.payload["service_classes"] == ["一级重要客户"]
    assert order.payload["cx_policy"] == policy.version


def test_a_repeat_contact_about_the_same_bill_is_offered_a_person_at_once(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    first = _talk(agent, "cx-rep-1", [f"查一下5月电费，户号{ACCOUNT_A}", "123X"])
    assert "lookup_bill" in first[1].actions and "转人工" not in first[1].text
    again = _talk(agent, "cx-rep-2", [f"查一下5月电费，户号{ACCOUNT_A}", "123X"])
    # The same contact is also a negative experience (a repeat within the FCR window): its apology
    # and remedy already offer a person, so the class rule adds no second offer.
    assert "lookup_bill" in again[1].actions and again[1].text.count("转接人工客服") == 1
    assert render("negative_apology_repeat_contact").text in again[1].text
    assert "cx_offer_person_repeat" not in again[1].actions
    person = agent.handle("cx-rep-2", "web", "转人工")
    assert person.handoff and person.outcome == "transferred"


def test_a_contact_about_another_bill_is_not_a_repeat(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    _talk(agent, "cx-other-1", [f"查一下4月电费，户号{ACCOUNT_A}", "123X"])
    again = _talk(agent, "cx-other-2", [f"查一下5月电费，户号{ACCOUNT_A}", "123X"])
    assert "lookup_bill" in again[1].actions and "cx_offer_person_repeat" not in again[1].actions


def test_a_derived_class_from_the_records_changes_the_complaint_too(world: World,
                                                                    make_agent: Callable[..., Agent]) -> None:
    """An earlier complaint makes A 投诉敏感客户 at the next tag refresh; its SLA and queue then apply."""
    from agent.experience.tags import refresh_tags
    from billing_core.db.models import WorkOrderKind, WorkOrderStatus

    sensitive = load_policy().by_code("complaint_sensitive")
    with world.sessions.begin() as session:
        session.add(WorkOrder(no="WO202605010001", kind=WorkOrderKind.COMPLAINT, account_no=ACCOUNT_A,
                              status=WorkOrderStatus.CLOSED, title="投诉：服务态度", channel="ivr",
                              created_at=NOW - timedelta(days=50), payload={"category": "service_attitude"}))
    with world.sessions.begin() as session:
        refresh_tags(session, NOW)
    replies = _talk(make_agent(), "cx-derived", COMPLAINT)
    assert replies[3].outcome == "ticket" and "转人工" not in replies[1].text  # no offer_person_first
    with world.sessions() as session:
        order = session.scalars(select(WorkOrder).where(WorkOrder.no != "WO202605010001")).one()
    assert order.sla_due_at == NOW + timedelta(hours=sensitive.service.complaint_contact_hours)
    assert order.payload["queue"] == sensitive.service.complaint_queue == "投诉管理班"


def test_a_customer_who_mostly_uses_wechat_is_answered_there(world: World,
                                                             make_agent: Callable[..., Agent]) -> None:
    """Three of A's four recent conversations were on WeChat (bound): a complaint made on the web
    page is to be answered on WeChat, and the customer is told so."""
    from agent.experience.tags import refresh_tags
    from agent.models import ConversationRecord, Outcome

    from agent.experience.classes import standing
    from tests.agent.world import ACCOUNT_B

    rule = load_policy().rules.preferred_channel
    with world.sessions.begin() as session:
        for n, (channel, account) in enumerate((("wechat", ACCOUNT_A), ("wechat", ACCOUNT_A), ("web", ACCOUNT_A),
                                                ("wechat", ACCOUNT_A), *[("wechat", ACCOUNT_B)] * 4)):
            session.add(ConversationRecord(conversation_id=f"hist-{n}", channel=channel, account_no=account,
                                           brain="local", topic="lookup_bill", intents=["lookup_bill"], tickets=[],
                                           outcome=Outcome.RESOLVED, turn_count=2,
                                           started_at=NOW - timedelta(days=30 + 10 * n)))
    with world.sessions.begin() as session:
        refresh_tags(session, NOW)
        assert standing(session, ACCOUNT_B).preferred_channel is None  # WeChat not bound: cannot reach B
    replies = _talk(make_agent(), "cx-wechat", COMPLAINT)
    assert replies[3].outcome == "ticket" and rule.message in replies[3].text
    assert _complaint(world).payload["reply_channel"] == "wechat"
