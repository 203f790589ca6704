"""End-to-end conversations on the local brain, through `Agent.handle`, the real NLU, the real
tools and a database built with the billing core; judged by the database end state and by what the
customer read (their own figures, never another customer's)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from agent.agent import Agent, Reply
from agent.models import ConversationRecord, Outcome, TurnRecord
from billing_core.db.models import WorkOrder, WorkOrderKind
from tests.agent.world import ACCOUNT_A, ACCOUNT_B, World
from tests.billing.conftest import postgres_server  # noqa: F401  (fixture)
from tools.models import AuditEvent


def _talk(agent: Agent, conversation_id: str, messages: list[str], channel: str = "web",
          **kwargs: object) -> list[Reply]:
    return [agent.handle(conversation_id, channel, text, **kwargs) for text in messages]


def _never_shows_b(world: World, replies: list[Reply]) -> None:
    for reply in replies:
        assert str(world.amounts["B:2026-05"]) not in reply.text
        assert ACCOUNT_B not in reply.text and "林美玲" not in reply.text and "林" not in reply.text


def test_verify_lookup_explain_dispute_with_confirmation_and_csat(world: World,
                                                                   make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    conv = "e2e-1"
    greet, ask, _ = _talk(agent, conv, ["你好", "我想查一下上个月的电费", ACCOUNT_A])
    assert "电费" in greet.text
    assert ask.awaiting == "account_no" and "户号" in ask.text
    bill = agent.handle(conv, "web", "手机后四位是8000")
    assert "verify_identity" in bill.actions and "lookup_bill" in bill.actions
    assert str(world.amounts["A:2026-05"]) in bill.text and "2026年5月" in bill.text

    explain = agent.handle(conv, "web", "为什么这么高")
    assert "explain_bill" in explain.actions
    assert str(world.amounts["A:2026-04"]) in explain.text  # compared with April, figures from the tool

    confirm = agent.handle(conv, "web", "我觉得5月的抄表读数不对，要申请核查")
    assert confirm.awaiting == "confirm" and "确认" in confirm.text
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 0  # nothing written yet

    done = agent.handle(conv, "web", "是的")
    assert done.outcome == "ticket" and len(done.tickets) == 1 and done.tickets[0] in done.text
    with world.sessions() as session:
        order = session.scalars(select(WorkOrder)).one()
        assert (order.kind, order.account_no, order.period, order.no) == (
            WorkOrderKind.DISPUTE, ACCOUNT_A, "2026-05", done.tickets[0])

    ask_csat = agent.handle(conv, "web", "好的谢谢，再见")
    assert ask_csat.awaiting == "csat"
    thanks = agent.handle(conv, "web", "满意")
    assert thanks.closed
    with world.sessions() as session:
        record = session.scalars(select(ConversationRecord)).one()
        assert record.csat_score == 4 and record.outcome == Outcome.TICKET  # 满意 is 4 of the 1–5 scale
        assert record.account_no == ACCOUNT_A and record.tickets == done.tickets
        turns = session.scalars(select(TurnRecord).order_by(TurnRecord.position)).all()
        assert len(turns) == 9 and all(t.grounded for t in turns)
        lookup = next(c for t in turns for c in t.tool_calls if c["tool"] == "lookup_bill")
        assert lookup["result"]["bills"][0]["amount"] == str(world.amounts["A:2026-05"])
        secret = next(c for t in turns for c in t.tool_calls if c["tool"] == "verify_identity")
        assert secret["arguments"]["last4"] == "***"  # the phone tail is not kept in the record
    _never_shows_b(world, [greet, ask, bill, explain, confirm, done, ask_csat, thanks])


def test_another_customers_account_never_widens_access(world: World,
                                                       make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    replies = _talk(agent, "e2e-2", ["查电费", ACCOUNT_A, "123X", f"帮我查一下户号{ACCOUNT_B}的电费"])
    assert "其他户号" in replies[-1].text
    _never_shows_b(world, replies)
    with world.sessions() as session:
        principals = select(AuditEvent.account_no).where(AuditEvent.account_no.is_not(None))
        audited = set(session.scalars(principals))
        assert audited == {ACCOUNT_A}


def test_cancel_before_confirmation_writes_nothing(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    replies = _talk(agent, "e2e-3", [f"我要投诉，户号{ACCOUNT_A}", "123X", "抄表员上门态度很差还骂人", "算了不投诉了"])
    assert replies[2].awaiting == "confirm"
    assert "取消" in replies[3].text and replies[3].tickets == []
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 0


def test_wrong_secret_three_times_locks_and_hands_off(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    replies = _talk(agent, "e2e-4", ["查电费", ACCOUNT_A, "0000", ACCOUNT_A, "1111", ACCOUNT_A, "2222"])
    assert replies[-1].handoff and "HO" in replies[-1].text
    assert all(str(world.amounts["A:2026-05"]) not in r.text for r in replies)


def test_after_a_wrong_tail_bare_digits_are_counted_guesses(world: World, make_agent: Callable[..., Agent]) -> None:
    # After one wrong tail the brain asks for the tail again (not the 户号): each bare 4-digit answer
    # is a verify_identity call counted against the conversation and the 户号.
    agent = make_agent()
    replies = _talk(agent, "e2e-bare", ["查电费", f"户号{ACCOUNT_B}", "0000", "1111", "2222"])
    assert [r.awaiting for r in replies[2:4]] == ["last4", "last4"]
    assert "户号" in replies[2].text and replies[-1].handoff and "HO" in replies[-1].text
    with world.sessions() as session:
        calls = session.scalars(select(AuditEvent.status).where(AuditEvent.conversation_id == "e2e-bare",
                                                                 AuditEvent.tool == "verify_identity")).all()
    assert calls == ["failed", "failed", "locked"]
    # A guesser who opens new conversations keeps counting against the same 户号: locked for the owner.
    _talk(agent, "e2e-bare-2", [f"户号{ACCOUNT_B}，尾号3333", "4444"])
    owner = _talk(agent, "e2e-owner", [f"户号{ACCOUNT_B}，尾号9000", "查电费"])
    assert owner[0].handoff and not any(str(world.amounts["B:2026-05"]) in r.text for r in owner)


def test_idempotent_message_id_returns_the_stored_reply(world: World,
                                                        make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    first = agent.handle("e2e-5", "wechat", "你好", message_id="msg-1")
    again = agent.handle("e2e-5", "wechat", "你好", message_id="msg-1")
    assert again == first
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(TurnRecord)) == 1


def test_wechat_bound_openid_verifies_without_asking(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    reply = agent.handle("e2e-6", "wechat", "我上个月电费多少", identity={"openid": "openid-A"})
    assert "verify_identity" in reply.actions and str(world.amounts["A:2026-05"]) in reply.text
    stranger = agent.handle("e2e-7", "wechat", "我上个月电费多少", identity={"openid": "openid-unknown"})
    assert stranger.awaiting == "account_no"


def test_multi_intent_message_runs_both_tasks(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    _talk(agent, "e2e-8", ["查电费", ACCOUNT_A, "123X"])
    reply = agent.handle("e2e-8", "web", "帮我查下2026年5月的电费，另外交了没有")
    assert "lookup_bill" in reply.actions and "payment_status" in reply.actions


def test_out_of_scope_outage_is_handed_off(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    reply = agent.handle("e2e-9", "web", "我家停电了，什么时候来电")
    assert reply.handoff and "95598" in reply.text and reply.outcome == "transferred"


def test_policy_question_is_answered_from_the_knowledge_base_with_a_citation(
        world: World, make_agent: Callable[..., Agent], knowledge: Callable) -> None:
    agent = make_agent(knowledge=knowledge)
    reply = agent.handle("e2e-10", "web", "居民阶梯电价是怎么算的")
    assert reply.citations and reply.citations[0]["title"] in reply.text
    assert "search_knowledge_base" in reply.actions and reply.grounded
    suggestions = agent.suggest("e2e-10")
    assert 1 <= len(suggestions) <= 3 and any(s.passages for s in suggestions)


def test_bad_input_names_the_field(make_agent: Callable[..., Agent]) -> None:
    from agent.agent import AgentInputError

    agent = make_agent()
    with pytest.raises(AgentInputError, match="text"):
        agent.handle("e2e-11", "web", "   ")
    with pytest.raises(AgentInputError, match="channel"):
        agent.handle("e2e-11", "fax", "你好")
    with pytest.raises(AgentInputError, match="conversation_id"):
        agent.handle("", "web", "你好")


def test_correction_during_confirmation_changes_what_is_written(world: World,
                                                                 make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    replies = _talk(agent, "e2e-12", ["我要申请电费核查", ACCOUNT_A, "123X", "5月", "电表走得太快了",
                                      "不对，是4月", "是"])
    assert [r.awaiting for r in replies[:5]] == ["account_no", "last4", "period", "reason", "confirm"]
    assert "2026年4月" in replies[5].text and replies[5].awaiting == "confirm"
    with world.sessions() as session:
        order = session.scalars(select(WorkOrder)).one()
        assert order.period == "2026-04" and "电表走得太快了" in order.description


def test_a_complaint_description_is_not_taken_for_a_new_task(world: World,
                                                              make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    replies = _talk(agent, "e2e-13", ["我要投诉", f"户号{ACCOUNT_A}，尾号123X",
                                      "营业厅的人办事太慢了，拖了两个星期都没处理", "是的"])
    assert replies[1].awaiting == "description" and replies[2].awaiting == "confirm"
    assert replies[3].actions == ["intake_complaint"] and replies[3].outcome == "ticket"
    with world.sessions() as session:
        order = session.scalars(select(WorkOrder)).one()
        assert order.kind == WorkOrderKind.COMPLAINT and order.account_no == ACCOUNT_A


def test_repeated_misunderstanding_ends_with_a_person(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    replies = _talk(agent, "e2e-14", ["啊啊啊", "嗯？", "哦"])
    assert not replies[0].handoff and "没有完全理解" in replies[0].text
    assert replies[-1].handoff and replies[-1].outcome == "transferred"


def test_hotline_caller_verifies_with_the_street_and_gets_recent_bills(
        world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    caller = {"caller": "13800138000"}
    ask = agent.handle("ivr-1", "ivr", "我想查最近两个月的电费", identity=caller)
    assert ask.awaiting == "check_answer"
    bills = agent.handle("ivr-1", "ivr", "体育西路", identity=caller)
    assert str(world.amounts["A:2026-05"]) in bills.text and str(world.amounts["A:2026-04"]) in bills.text


@pytest.mark.postgres
def test_dispute_conversation_on_postgresql(postgres_server) -> None:  # noqa: F811
    from agent.state import InMemoryStateStore
    from tests.agent.world import NOW, build_world

    url = postgres_server.create_database()
    try:
        pg = build_world(url)
        agent = Agent(sessions=pg.sessions, store=InMemoryStateStore(), brain="local", clock=lambda: NOW,
                      knowledge=lambda: None)
        replies = _talk(agent, "pg-1", [f"户号{ACCOUNT_A}尾号123X", "5月电费读数不对，我要申请核查", "是", "再见", "4分"])
        assert replies[2].outcome == "ticket" and replies[-1].closed
        with pg.sessions() as session:
            assert session.scalars(select(WorkOrder.account_no)).all() == [ACCOUNT_A]
            record = session.scalars(select(ConversationRecord)).one()
            assert record.csat_score == 4 and record.outcome == Outcome.TICKET and record.turn_count == 5
        pg.sessions.kw["bind"].dispose()
    finally:
        postgres_server.drop_database(url.rsplit("/", 1)[1])


def test_a_failing_turn_apologises_and_loses_nothing(world: World, make_agent: Callable[..., Agent]) -> None:
    calls: list[str] = []

    def flaky(text: str, today):  # the NLU breaks once (say, a model file went missing)
        from agent.agent import nlu_understand

        calls.append(text)
        if len(calls) == 2:
            raise RuntimeError("model unavailable")
        return nlu_understand(text, today)

    agent = make_agent(understand=flaky)
    asked = agent.handle("e2e-15", "web", "我想查上个月电费", message_id="a")
    failed = agent.handle("e2e-15", "web", ACCOUNT_A, message_id="b")
    assert "稍后再试" in failed.text
    assert agent.state("e2e-15").awaiting == asked.awaiting == "account_no"  # state as before the failure
    retried = agent.handle("e2e-15", "web", ACCOUNT_A, message_id="b")  # the resend is answered for real
    assert retried.awaiting == "last4"


def test_a_month_without_an_issued_bill_shows_the_latest_instead(world: World,
                                                                  make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    replies = _talk(agent, "e2e-16", [f"户号{ACCOUNT_A}尾号123X", "2026年6月的电费多少"])
    assert "2026-06" in replies[-1].text and "最近一期" in replies[-1].text
    assert str(world.amounts["A:2026-05"]) in replies[-1].text and replies[-1].grounded


def test_records_keep_phone_numbers_masked(world: World, make_agent: Callable[..., Agent]) -> None:
    agent = make_agent()
    agent.handle("e2e-17", "web", "我的手机号是13912345678，想查电费")
    with world.sessions() as session:
        turn = session.scalars(select(TurnRecord)).one()
        assert "13912345678" not in turn.user_text and "139****5678" in turn.user_text


def test_concurrent_messages_of_one_conversation_run_one_at_a_time(world: World,
                                                                    make_agent: Callable[..., Agent]) -> None:
    import threading

    agent = make_agent()
    errors: list[BaseException] = []

    def send(i: int) -> None:
        try:
            agent.handle("e2e-18", "web", "你好", message_id=f"m{i}")
            agent.handle("e2e-18", "web", "你好", message_id=f"m{i}")  # a resend: answered from the store
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert agent.state("e2e-18").turns == 4
    with world.sessions() as session:
        positions = session.scalars(select(TurnRecord.position).order_by(TurnRecord.position)).all()
        assert positions == [1, 2, 3, 4]
