"""The LLM brain's answer streamed sentence by sentence through the real `ChatOpenAI` client and
a loopback server replaying recorded `chat.completion.chunk` streams: every sentence is guarded
before it leaves, an invented figure mid-stream never reaches the reader, and a stream that
stalls falls back to the local brain with the shown sentences retracted."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from agent.agent import Agent
from agent.llm_brain import LLMBrain, LLMSettings, make_chat_model
from agent.models import TurnRecord
from agent.streaming import Final, Retract, Sentence, SentenceSplitter, split_sentences
from tests.agent.llm_fakes import Recorded, completion, replay_server
from tests.agent.world import ACCOUNT_A, World

VERIFY = ("verify_identity", {"method": "account_secret", "account_no": ACCOUNT_A, "last4": "123X"})
BILL = ("lookup_bill", {"period": "2026-05"})


def test_sentences_end_at_chinese_marks_never_inside_a_number() -> None:
    assert split_sentences("您5月电费242.55元。请于7月15日前缴纳！还有问题吗？好的") == [
        "您5月电费242.55元。", "请于7月15日前缴纳！", "还有问题吗？", "好的"]
    assert split_sentences("他说：「好的。」然后？！再见\n谢谢") == ["他说：「好的。」", "然后？！", "再见\n", "谢谢"]
    splitter = SentenceSplitter()  # deltas cut anywhere, even between "12." and "34"
    assert splitter.feed("电费12.") == [] and splitter.feed("34元。") == []
    assert splitter.feed("Total 3.5 kWh. Next") == ["电费12.34元。", "Total 3.5 kWh."]
    assert splitter.flush() == " Next"


def _agent(make_agent: Callable[..., Agent], url: str, timeout: float = 5.0) -> Agent:
    settings = LLMSettings(base_url=url, model="deepseek-chat", api_key="k", timeout=timeout)
    return make_agent(brain="llm", llm=LLMBrain(make_chat_model(settings)))


def test_grounded_reply_streams_sentence_by_sentence_and_ends_with_the_reply(
        world: World, make_agent: Callable[..., Agent]) -> None:
    amount = world.amounts["A:2026-05"]
    answer = f"您2026年5月的电费为{amount}元。请于2026年7月15日前缴纳。"
    recorded = [Recorded(completion(tool_calls=[VERIFY])), Recorded(completion(tool_calls=[BILL])),
                Recorded(completion(answer))]
    with replay_server(recorded) as server:
        events = list(_agent(make_agent, server.url).stream("st-1", "web", f"户号{ACCOUNT_A}，尾号123X，查5月电费"))
    assert all(request.get("stream") for request in server.requests) and len(server.requests) == 3
    sentences = [e.text for e in events if isinstance(e, Sentence)]
    assert sentences == [f"您2026年5月的电费为{amount}元。", "请于2026年7月15日前缴纳。"]
    assert not any(isinstance(e, Retract) for e in events)
    final = events[-1]
    assert isinstance(final, Final) and final.reply.text == "".join(sentences)
    assert final.reply.brain == "llm" and final.reply.grounded
    assert {"verify_identity", "lookup_bill"} <= set(final.reply.actions)
    with world.sessions() as session:  # recorded as handle records it
        assert session.scalars(select(TurnRecord)).one().reply_text == final.reply.text


def test_figure_invented_mid_stream_never_reaches_the_reader(world: World,
                                                             make_agent: Callable[..., Agent]) -> None:
    amount = world.amounts["A:2026-05"]
    answer = f"您5月电费{amount}元。比去年同期多了58.20元，主要是天气热。建议您错峰用电。"
    recorded = [Recorded(completion(tool_calls=[VERIFY])), Recorded(completion(tool_calls=[BILL])),
                Recorded(completion(answer)), Recorded(completion("您5月电费大约300元。"))]
    with replay_server(recorded) as server:
        events = list(_agent(make_agent, server.url).stream("st-2", "web", f"户号{ACCOUNT_A}尾号123X，5月电费多少"))
    shown = [e.text for e in events if isinstance(e, Sentence)]
    assert shown == [f"您5月电费{amount}元。"]  # the held sentence and all after it never left
    assert [type(e) for e in events] == [Sentence, Retract, Final]
    assert events[1].reason == "ungrounded"
    reply = events[-1].reply
    assert not reply.grounded and "抱歉" in reply.text and "58.2" not in reply.text and "300" not in reply.text
    regeneration = server.requests[-1]
    assert not regeneration.get("stream")  # the regeneration is checked whole, not streamed
    assert "58.20" in regeneration["messages"][-1]["content"]
    assert "58.20" in regeneration["messages"][-2]["content"]  # the partial answer it is asked to redo
    with world.sessions() as session:
        turn = session.scalars(select(TurnRecord)).one()
        assert turn.grounded is False and turn.violations and "58.2" not in turn.reply_text


def test_regenerated_reply_replaces_the_retracted_sentences(world: World,
                                                            make_agent: Callable[..., Agent]) -> None:
    amount = world.amounts["A:2026-05"]
    recorded = [Recorded(completion(tool_calls=[VERIFY])), Recorded(completion(tool_calls=[BILL])),
                Recorded(completion(f"您5月电费{amount}元。比4月多了12.34元。")),
                Recorded(completion(f"您5月电费{amount}元，与上月的对比请以账单为准。"))]
    with replay_server(recorded) as server:
        events = list(_agent(make_agent, server.url).stream("st-3", "web", f"户号{ACCOUNT_A}尾号123X，5月电费多少"))
    assert [type(e) for e in events] == [Sentence, Retract, Final] and events[1].reason == "replaced"
    assert events[-1].reply.text == f"您5月电费{amount}元，与上月的对比请以账单为准。"


def test_stream_stalling_mid_answer_falls_back_to_the_local_brain(world: World,
                                                                  make_agent: Callable[..., Agent]) -> None:
    stalled = Recorded(completion("您好，我先帮您看一下。请稍等，马上就好。"), stall_after=3, stall=2.0)
    with replay_server([stalled]) as server:
        events = list(_agent(make_agent, server.url, timeout=0.5).stream("st-4", "web", "我想查电费"))
    assert [type(e) for e in events] == [Sentence, Retract, Final]
    assert events[0].text == "您好，我先帮您看一下。" and events[1].reason == "fallback"
    reply = events[-1].reply
    assert reply.brain == "local" and reply.awaiting == "account_no"


def test_handle_is_unchanged_and_replays_a_stored_reply(world: World, make_agent: Callable[..., Agent]) -> None:
    recorded = [Recorded(completion("您好！请问有什么可以帮您？"))]
    with replay_server(recorded) as server:
        agent = _agent(make_agent, server.url)
        first = agent.handle("st-5", "web", "你好", message_id="m1")
        again = list(agent.stream("st-5", "web", "你好", message_id="m1"))  # a resend: nothing re-run
    assert len(server.requests) == 1 and first.brain == "llm"
    assert [type(e) for e in again] == [Final] and again[0].reply == first


def test_streamed_write_is_read_back_and_waits_for_confirmation(world: World,
                                                                make_agent: Callable[..., Agent]) -> None:
    dispute = ("open_dispute", {"period": "2026-05", "category": "reading_wrong", "reason": "电表读数不对"})
    recorded = [Recorded(completion(tool_calls=[VERIFY])), Recorded(completion(tool_calls=[BILL])),
                Recorded(completion(tool_calls=[dispute]))]
    with replay_server(recorded) as server:
        agent = _agent(make_agent, server.url)
        events = list(agent.stream("st-6", "web", f"户号{ACCOUNT_A}尾号123X，我5月电表读数不对，要申请核查"))
        done = agent.handle("st-6", "web", "是")
    reply = events[-1].reply
    assert reply.awaiting == "confirm" and "".join(e.text for e in events[:-1]) == reply.text
    assert "2026-05" in reply.text and "确认" in reply.text
    assert done.outcome == "ticket" and done.tickets
