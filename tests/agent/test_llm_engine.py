"""The LLM brain inside the dialogue engine: real tools over the billing database, the guard on its
replies, the write interrupt resumed by a confirmation, and the fallback to the local brain."""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.messages import AIMessage
from sqlalchemy import func, select

from agent.agent import Agent
from agent.llm_brain import LLMBrain, LLMSettings, make_chat_model
from agent.models import TurnRecord
from billing_core.db.models import WorkOrder
from tests.agent.llm_fakes import Recorded, ScriptedChatModel, completion, replay_server
from tests.agent.world import ACCOUNT_A, ACCOUNT_B, World


def _calls(*calls: tuple[str, dict]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": n, "args": a, "id": f"c{i}", "type": "tool_call"}
                                             for i, (n, a) in enumerate(calls)])


VERIFY = ("verify_identity", {"method": "account_secret", "account_no": ACCOUNT_A, "last4": "123X"})


def test_llm_brain_verifies_and_answers_from_tool_results(world: World,
                                                          make_agent: Callable[..., Agent]) -> None:
    amount = world.amounts["A:2026-05"]
    model = ScriptedChatModel(script=[_calls(VERIFY), _calls(("lookup_bill", {"period": "2026-05"})),
                                      AIMessage(content=f"您2026年5月的电费为{amount}元，请于2026年7月15日前缴纳。")])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    reply = agent.handle("llm-1", "web", f"户号{ACCOUNT_A}，尾号123X，查5月电费")
    assert reply.brain == "llm" and reply.grounded
    assert reply.text == f"您2026年5月的电费为{amount}元，请于2026年7月15日前缴纳。"
    assert {"verify_identity", "lookup_bill"} <= set(reply.actions)


def test_llm_cannot_read_another_account_by_naming_it(world: World, make_agent: Callable[..., Agent]) -> None:
    # The model tries to pass someone else's 户号 to a billing tool: the tool refuses the argument.
    model = ScriptedChatModel(script=[_calls(VERIFY), _calls(("lookup_bill", {"account_no": ACCOUNT_B})),
                                      AIMessage(content="抱歉，只能查询您本人的账单。")])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    reply = agent.handle("llm-2", "web", f"我是{ACCOUNT_A}，尾号123X，帮我查{ACCOUNT_B}的电费")
    assert str(world.amounts["B:2026-05"]) not in reply.text
    tool_message = model.seen[-1][-1]
    assert "invalid_input" in tool_message.content
    assert str(world.amounts["B:2026-05"]) not in tool_message.content


def test_invented_number_is_regenerated_then_replaced(world: World, make_agent: Callable[..., Agent]) -> None:
    amount = world.amounts["A:2026-05"]
    model = ScriptedChatModel(script=[_calls(VERIFY), _calls(("lookup_bill", {"period": "2026-05"})),
                                      AIMessage(content=f"您5月电费{amount}元，比去年同期多了58.20元。"),
                                      AIMessage(content="您5月电费大约300元。")])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    reply = agent.handle("llm-3", "web", f"户号{ACCOUNT_A}尾号123X，5月电费多少")
    assert not reply.grounded and "58.20" not in reply.text and "300元" not in reply.text
    assert "抱歉" in reply.text  # the safe template
    with world.sessions() as session:
        turn = session.scalars(select(TurnRecord)).one()
        assert turn.grounded is False and turn.violations


def test_write_tool_waits_for_confirmation_then_opens_the_ticket(world: World,
                                                                  make_agent: Callable[..., Agent]) -> None:
    dispute = ("open_dispute", {"period": "2026-05", "category": "reading_wrong", "reason": "电表读数不对"})
    model = ScriptedChatModel(script=[_calls(VERIFY), _calls(("lookup_bill", {"period": "2026-05"})),
                                      _calls(dispute)])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    ask = agent.handle("llm-4", "web", f"户号{ACCOUNT_A}尾号123X，我5月电表读数不对，要申请核查")
    assert ask.awaiting == "confirm" and "确认" in ask.text
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 0
    done = agent.handle("llm-4", "web", "是")
    assert done.outcome == "ticket" and done.tickets and done.tickets[0] in done.text
    with world.sessions() as session:
        order = session.scalars(select(WorkOrder)).one()
        assert (order.account_no, order.period) == (ACCOUNT_A, "2026-05")


def test_every_write_the_registry_confirms_waits_for_the_customer_on_the_llm_brain(
        world: World, make_agent: Callable[..., Agent]) -> None:
    """The contact phone change was missing from a hand list of write tools: the model's call ran
    at once. The interrupt now follows `ToolSpec.confirm_as`, so it is read back (masked) first."""
    from billing_core.db.models import Customer

    def phone() -> str | None:
        with world.sessions() as session:
            return session.scalar(select(Customer.phone).where(Customer.account_no == ACCOUNT_A))

    before = phone()
    model = ScriptedChatModel(script=[_calls(VERIFY), _calls(("change_contact_phone", {"new_phone": "13712345678"}))])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    ask = agent.handle("llm-phone", "web", f"户号{ACCOUNT_A}尾号123X，联系电话改成13712345678")
    assert ask.awaiting == "confirm" and "修改登记的联系电话" in ask.text
    assert "13712345678" not in ask.text and "change_contact_phone" not in ask.actions
    assert phone() == before  # nothing written before the 「是」
    done = agent.handle("llm-phone", "web", "是")
    assert "change_contact_phone" in done.actions and phone() == "13712345678"


def test_endpoint_error_and_timeout_fall_back_to_the_local_brain(world: World,
                                                                 make_agent: Callable[..., Agent]) -> None:
    for recorded, timeout in ((Recorded(status=503), 5.0), (Recorded(completion("迟到"), delay=1.5), 0.3)):
        with replay_server([recorded]) as server:
            settings = LLMSettings(base_url=server.url, model="qwen-plus", api_key="k", timeout=timeout)
            agent = make_agent(brain="llm", llm=LLMBrain(make_chat_model(settings)))
            reply = agent.handle(f"llm-5-{timeout}", "web", "我想查电费")
            assert len(server.requests) == 1
        assert reply.brain == "local" and reply.awaiting == "account_no"


def test_recorded_reply_with_invented_ticket_is_caught(world: World,
                                                       make_agent: Callable[..., Agent]) -> None:
    recorded = [Recorded(completion(tool_calls=[VERIFY])),
                Recorded(completion("已为您登记工单WO202606260099，请耐心等待。")),
                Recorded(completion("已为您登记工单WO202606260098。"))]
    with replay_server(recorded) as server:
        settings = LLMSettings(base_url=server.url, model="deepseek-chat", api_key="k")
        agent = make_agent(brain="llm", llm=LLMBrain(make_chat_model(settings)))
        reply = agent.handle("llm-6", "web", f"户号{ACCOUNT_A}尾号123X，帮我登记一下")
    assert "WO2026062600" not in reply.text and not reply.grounded
    assert "WO202606260099" in server.requests[-1]["messages"][-1]["content"]  # the regeneration request


def test_an_angry_message_on_the_llm_brain_gets_the_apology_and_a_person(
        world: World, make_agent: Callable[..., Agent]) -> None:
    """Guide §7.4 on the LLM brain too: anger is answered by the negative-experience step (apology,
    a person offered, a 负面体验 record), not improvised by the model; the model is not called."""
    from agent.experience.negative.models import NegativeExperience

    model = ScriptedChatModel(script=[AIMessage(content="好的。")])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    reply = agent.handle("llm-angry", "web", "你们这破系统到底怎么回事！气死我了，电费乱收，我要骂人了")
    assert reply.brain == "local" and reply.awaiting == "remedy" and "抱歉" in reply.text
    assert model.seen == []
    with world.sessions() as session:
        record = session.scalars(select(NegativeExperience)
                                 .where(NegativeExperience.conversation_id == "llm-angry")).one()
    assert record.cause == "negative_emotion"
    calm = agent.handle("llm-calm", "web", f"户号{ACCOUNT_A}，尾号123X，查5月电费")
    assert calm.brain == "llm"  # an ordinary message still goes to the model


def test_an_identity_lock_out_made_by_the_llms_tools_is_a_negative_experience(
        world: World, make_agent: Callable[..., Agent]) -> None:
    """The model's own verify_identity calls lock the conversation: recorded as on the local brain,
    with the apology after the model's words, and the next turn offers the remedy deterministically."""
    from agent.experience.negative.models import NegativeExperience
    from agent.replies import render

    wrong = ("verify_identity", {"method": "account_secret", "account_no": ACCOUNT_A, "last4": "0000"})
    model = ScriptedChatModel(script=[_calls(wrong), _calls(wrong), _calls(wrong), _calls(wrong),
                                      AIMessage(content="核实未通过，请稍后再试。")])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    reply = agent.handle("llm-locked", "web", f"户号{ACCOUNT_A}，尾号0000，查电费")
    assert reply.brain == "llm" and reply.text.endswith(render("negative_apology_identity_locked").text)
    with world.sessions() as session:
        record = session.scalars(select(NegativeExperience)
                                 .where(NegativeExperience.conversation_id == "llm-locked")).one()
    assert record.cause == "identity_locked"
    nxt = agent.handle("llm-locked", "web", "那怎么办")
    assert nxt.brain == "local" and nxt.awaiting == "remedy"  # the remedy, not the model improvising


def _csat_of(world: World, conversation: str) -> int | None:
    from agent.models import ConversationRecord

    with world.sessions() as session:
        return session.scalar(select(ConversationRecord.csat_score)
                              .where(ConversationRecord.conversation_id == conversation))


def _negative_causes(world: World, conversation: str) -> list[str]:
    from agent.experience.negative.models import NegativeExperience

    with world.sessions() as session:
        row = session.scalar(select(NegativeExperience).where(NegativeExperience.conversation_id == conversation))
    return list(row.causes) if row is not None else []


def test_a_low_score_typed_to_the_model_is_the_conversations_csat_and_a_negative_experience(
        world: World, make_agent: Callable[..., Agent]) -> None:
    """「非常不满意，给1星」 in reply to the model's satisfaction question: read from the customer's own
    words by the local brain's rating step (the model is not asked), stored as the conversation's
    CSAT and fed to the negative-experience pipeline, as the rating widget's score is."""
    amount = world.amounts["A:2026-05"]
    model = ScriptedChatModel(script=[_calls(VERIFY), _calls(("lookup_bill", {"period": "2026-05"})),
                                      AIMessage(content=f"您5月电费{amount}元。请问您对本次服务满意吗？")])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    agent.handle("llm-csat-low", "web", f"户号{ACCOUNT_A}尾号123X，5月电费多少")
    asked = len(model.seen)
    rated = agent.handle("llm-csat-low", "web", "非常不满意，给1星")
    assert len(model.seen) == asked  # the model had no say in the score
    assert rated.brain == "local" and rated.awaiting == "remedy" and "没能让您满意" in rated.text
    assert _csat_of(world, "llm-csat-low") == 1
    assert _negative_causes(world, "llm-csat-low") == ["low_csat"]
    accepted = agent.handle("llm-csat-low", "web", "是")
    assert accepted.closed and "已为您登记专人回电" in accepted.text


def test_a_typed_score_without_a_question_and_a_good_one_are_recorded_too(
        world: World, make_agent: Callable[..., Agent]) -> None:
    # A model that would answer a rating with its own words (and might name a score): never asked.
    model = ScriptedChatModel(script=[AIMessage(content="感谢您的5分好评！")] * 2)
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    low = agent.handle("llm-csat-2", "web", "2分")  # a rating by itself, no question before it
    assert low.brain == "local" and low.awaiting == "remedy"
    assert _csat_of(world, "llm-csat-2") == 2 and _negative_causes(world, "llm-csat-2") == ["low_csat"]
    good = agent.handle("llm-csat-5", "web", "服务很好，5分")
    assert good.brain == "local" and good.closed and _csat_of(world, "llm-csat-5") == 5
    assert _negative_causes(world, "llm-csat-5") == [] and model.seen == []


def test_numbers_that_are_not_ratings_stay_with_the_model(world: World,
                                                           make_agent: Callable[..., Agent]) -> None:
    """A bare 「1」 answering the model's numbered choice, and 「1分钱」 in a bill question, are no
    rating: the model answers and no CSAT is recorded."""
    model = ScriptedChatModel(script=[AIMessage(content="请问您要办理哪一项？1. 查电费 2. 缴费记录"),
                                      AIMessage(content="好的，请提供户号和登记手机号后4位。"),
                                      AIMessage(content="请先提供户号，我帮您核对电费。")])
    agent = make_agent(brain="llm", llm=LLMBrain(model))
    agent.handle("llm-not-csat", "web", "你好")
    choice = agent.handle("llm-not-csat", "web", "1")
    assert choice.brain == "llm" and choice.text.startswith("好的")
    bill = agent.handle("llm-not-csat", "web", "这个月电费是不是多收了1分钱")
    assert bill.brain == "llm"
    assert _csat_of(world, "llm-not-csat") is None and _negative_causes(world, "llm-not-csat") == []
