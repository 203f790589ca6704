"""Issue 13's dialogue cases on the local brain: slot answers validated, details added at the
read-back, an unsure message answered with a question, every task clause of a long message served."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from agent.agent import Agent
from billing_core.db.models import WorkOrder
from tests.agent.world import World

VERIFY = "户号440100000001，手机尾号8000"


def _talk(agent: Agent, conv: str, messages: list[str], channel: str = "web") -> list:
    return [agent.handle(conv, channel, text) for text in messages]


def test_yes_is_not_a_dispute_reason(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    *_, asked, again, confirm = _talk(agent, "reason", ["我要申请电费核查", VERIFY, "上个月", "是", "电表读数不对"])
    assert asked.awaiting == "reason"
    assert again.awaiting == "reason" and "原因：是" not in again.text
    assert confirm.awaiting == "confirm" and "原因：电表读数不对" in confirm.text


def test_a_description_typed_at_the_read_back_is_written_and_read_back(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    *_, first, again, done = _talk(agent, "detail", [VERIFY, "我要投诉抄表员态度很差", "就是上周三下午，在小区门口", "是"])
    assert first.awaiting == "confirm"
    assert again.awaiting == "confirm" and "在小区门口" in again.text and "态度很差" in again.text
    assert done.tickets
    with world.sessions() as session:
        order = session.scalars(select(WorkOrder).where(WorkOrder.no == done.tickets[0])).one()
    assert "在小区门口" in order.description and "态度很差" in order.description


def test_an_unsure_message_gets_a_question_with_choices_and_a_number_continues(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    asked = agent.handle("choice", "web", "那个电的事情我想问问")
    assert asked.awaiting == "choice" and not asked.handoff
    assert 2 <= len(asked.choices) <= 3 and "报告停电或用电故障" in asked.choices
    first = asked.choices[0]  # a task of the desk's own (they come before hand-offs)
    assert first != "报告停电或用电故障" and f"1. {first}" in asked.text  # WeChat and the hotline read the list
    picked = agent.handle("choice", "web", "1")
    assert picked.awaiting == "account_no" and not picked.handoff  # the chosen task asks who it is for


def test_an_out_of_scope_guess_while_a_task_waits_is_the_answer_to_its_slot(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    *_, waiting, answer, done = _talk(agent, "case1", [VERIFY, "我要申请电费核查", "5月份那张账单，电表读数不对，我家根本没用那么多电", "确认"])
    assert waiting.awaiting == "period"
    assert not answer.handoff and answer.awaiting == "confirm" and "2026年5月" in answer.text
    assert "电表读数不对" in answer.text and "lookup_bill" not in answer.actions
    assert done.tickets and "open_dispute" in done.actions


def _overdue_march(world: World) -> None:
    from datetime import date

    from billing_core.db.models import Customer
    from tests.agent.world import ACCOUNT_A, add_bill

    with world.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.account_no == ACCOUNT_A)).one()
        add_bill(session, customer, "2026-03", "210", date(2026, 4, 15))  # unpaid, past due
        session.commit()


def test_paid_or_not_leads_with_the_latest_bill_on_web_and_wechat(
        world: World, make_agent: Callable[..., Agent]) -> None:
    _overdue_march(world)
    agent = make_agent()
    *_, web = _talk(agent, "paid-web", [VERIFY, "查一下3月的账单", "电费交了没有"])
    wechat = agent.handle("paid-wechat", "wechat", "电费交了没有", identity={"openid": "openid-A"})
    for reply in (web, wechat):
        assert "payment_status" in reply.actions
        text = reply.text[reply.text.index("2026-0"):]  # from the first bill it names
        assert text.startswith("2026-05"), text  # the latest issued bill first …
        assert "2026-03" in text and "逾期" in text  # … then the overdue one
        assert text.index("2026-05") < text.index("2026-03")


def test_why_so_high_about_a_bill_that_went_down_says_so_first(
        world: World, make_agent: Callable[..., Agent]) -> None:
    from datetime import date

    from billing_core.db.models import Customer
    from tests.agent.world import ACCOUNT_B, add_bill

    with world.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.account_no == ACCOUNT_B)).one()
        april = add_bill(session, customer, "2026-04", "400", date(2026, 5, 15))
        session.commit()
        april_amount = april.amount
    may_amount = world.amounts["B:2026-05"]
    agent = make_agent()
    *_, reply = _talk(agent, "down", ["户号440100000002，手机尾号9000", "这个月电费为什么这么高"])
    body = reply.text.split("最近一期已发行的账单是：")[-1]  # 「这个月」 (June) is not issued yet: May answers
    assert "explain_bill" in reply.actions and body.startswith("您2026年5月的电费其实比上月低") and reply.grounded
    assert f"少了{april_amount - may_amount}元" in reply.text  # the tool's figures, not the model's
    assert "第一档电费" not in reply.text and len(body) < 160  # short: no line-by-line figures


def test_why_so_high_about_a_bill_that_went_up_still_explains_the_lines(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    *_, reply = _talk(agent, "up", [VERIFY, "这个月电费为什么这么高"])
    assert "其实比上月低" not in reply.text and "增加" in reply.text


def test_contact_details_on_file_are_masked_and_need_verification(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    asked = agent.handle("contact", "web", "我登记的手机号是多少？地址呢？")
    assert asked.awaiting == "account_no" and "138" not in asked.text
    *_, reply = _talk(agent, "contact", [VERIFY])
    assert "contact_info" in reply.actions
    assert "138****8000" in reply.text and "13800138000" not in reply.text
    assert "体育西路" in reply.text and "1 号" not in reply.text and "1号" not in reply.text


def test_changing_the_contact_phone_validates_reads_back_and_writes_after_yes(
        world: World, make_agent: Callable[..., Agent]) -> None:
    from billing_core.db.models import Customer
    from tests.agent.world import ACCOUNT_A
    from tools.models import AuditEvent

    agent = make_agent()
    *_, ask, bad, confirm = _talk(agent, "phone", [VERIFY, "我要改一下联系电话", "1391234", "139 1234 5678"])
    assert ask.awaiting == "new_phone" and bad.awaiting == "new_phone"
    assert confirm.awaiting == "confirm" and "139****5678" in confirm.text
    with world.sessions() as session:  # nothing written before the 「是」
        assert session.scalars(select(Customer.phone).where(Customer.account_no == ACCOUNT_A)).one() == "13800138000"
    done = agent.handle("phone", "web", "是")
    assert "change_contact_phone" in done.actions and "139****5678" in done.text
    with world.sessions() as session:
        assert session.scalars(select(Customer.phone).where(Customer.account_no == ACCOUNT_A)).one() == "13912345678"
        audit = session.scalars(select(AuditEvent).where(AuditEvent.tool == "change_contact_phone")).one()
    assert audit.account_no == ACCOUNT_A and audit.status == "changed"
    assert "13912345678" not in str(audit.arguments) and "13912345678" not in str(audit.result)


def test_a_long_message_serves_every_task_and_answers_the_instalment_question(
        world: World, make_agent: Callable[..., Agent], knowledge) -> None:
    agent = make_agent(knowledge=knowledge)
    reply = agent.handle("long", "web", "你好我姓陈户号440100000001手机尾号8000我家这个月电费好像比上个月多了不少"
                         "我也不知道是不是家里空调开多了还是表有问题我老婆说让我问问你们到底怎么回事"
                         "另外我想问一下如果钱一下子交不上能不能分期交？")
    assert not reply.handoff and "explain_bill" in reply.actions and "search_knowledge_base" in reply.actions
    assert "逐一为您办理" in reply.text and "分期" in reply.text and "转人工" in reply.text
    assert reply.grounded


def test_a_bare_month_answers_the_disputes_month_and_is_not_a_bill_lookup(
        world: World, make_agent: Callable[..., Agent]) -> None:
    # The SVM head reads 「2026年5月」「上个月」 as lookup_bill (上个月 even surely): awaiting the
    # dispute's month, they are its answer.
    agent = make_agent()
    for conv, month in (("bare-month", "2026年5月"), ("bare-relative", "上个月")):
        *_, waiting, answer = _talk(agent, conv, [VERIFY, "我要申请电费核查", month])
        assert waiting.awaiting == "period"
        assert answer.awaiting == "reason" and "lookup_bill" not in answer.actions and not answer.handoff


def test_a_sure_other_task_at_the_month_question_is_still_served(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    *_, waiting, answer = _talk(agent, "other-task", [VERIFY, "我要申请电费核查", "帮我查一下5月电费交了没有"])
    assert waiting.awaiting == "period" and "payment_status" in answer.actions


def test_no_change_at_the_phone_read_back_writes_nothing(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    *_, confirm, declined = _talk(agent, "phone-no", [VERIFY, "我要改一下联系电话", "13912345678", "不改了"])
    assert confirm.awaiting == "confirm"
    assert "change_contact_phone" not in declined.actions and declined.awaiting != "confirm"
    after = agent.handle("phone-no", "web", "是")
    assert "change_contact_phone" not in after.actions


def test_a_vague_opening_is_not_a_sure_out_of_scope_report() -> None:
    from datetime import date

    from agent.nlu import understand

    assert not understand("那个电的事情我想问问", date(2026, 6, 15)).out_of_scope_is_sure()
    assert understand("我家突然停电了，什么时候能来电", date(2026, 6, 15)).out_of_scope_is_sure()


def test_the_desks_own_tasks_are_offered_before_hand_offs() -> None:
    """「第一个」 should not depend on the model ranking 报告停电 just above a billing task."""
    from agent.flows.clarify import served_first

    assert served_first(["outage_report", "usage_check", "new_connection", "lookup_bill"]) == [
        "usage_check", "lookup_bill", "outage_report", "new_connection"]
