"""The LLM brain: tool calling, the write interrupt, fallback on error/timeout, and the guard
catching an invented number — with a scripted model and with recorded OpenAI responses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool

from agent.grounding import check_reply, evidence_from
from agent.llm_brain import LLMBrain, LLMSettings, LLMUnavailable, make_chat_model, parse_tool_output
from tests.agent.llm_fakes import Recorded, ScriptedChatModel, completion, replay_server

LOOKUPS: list[dict] = []


def _lookup_bill(period: str) -> dict:
    LOOKUPS.append({"period": period})
    return {"status": "ok", "period": period, "amount": str(Decimal("242.55")), "total_kwh": "312",
            "due_date": "2026-06-20"}


def _open_dispute(period: str, reason: str) -> dict:
    raise AssertionError("a write tool must not run without the customer's confirmation")


TOOLS = [StructuredTool.from_function(_lookup_bill, name="lookup_bill", description="查询账单"),
         StructuredTool.from_function(_open_dispute, name="open_dispute", description="申请电费核查")]


def _call(name: str, args: dict, i: int = 0) -> AIMessage:
    call = {"name": name, "args": args, "id": f"c{i}", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call])


def test_scripted_tool_call_then_grounded_answer() -> None:
    LOOKUPS.clear()
    model = ScriptedChatModel(script=[_call("lookup_bill", {"period": "2026-05"}),
                                      AIMessage(content="您2026年5月电费242.55元，用电312度，请于2026-06-20前缴纳。")])
    turn = LLMBrain(model).respond("我五月电费多少", TOOLS, context="已核实户号0100012345")
    assert LOOKUPS == [{"period": "2026-05"}]
    assert [c.tool for c in turn.tool_calls] == ["lookup_bill"]
    assert "policy" not in turn.reply and "242.55" in turn.reply
    system = model.seen[0][0].content
    assert "只说有来源的数字" in system and "已核实户号0100012345" in system
    evidence = evidence_from(tool_results=[parse_tool_output(c.result) for c in turn.tool_calls])
    assert check_reply(turn.reply, evidence).grounded


def test_write_tool_is_interrupted_for_confirmation() -> None:
    model = ScriptedChatModel(script=[_call("open_dispute", {"period": "2026-05", "reason": "读数不对"})])
    turn = LLMBrain(model).respond("我要申诉五月电费", TOOLS)
    assert turn.pending is not None and turn.pending.tool == "open_dispute"
    assert turn.pending.arguments == {"period": "2026-05", "reason": "读数不对"}
    assert "确认" in turn.reply and turn.tool_calls == []


def test_scripted_model_error_becomes_llm_unavailable() -> None:
    with pytest.raises(LLMUnavailable):
        LLMBrain(ScriptedChatModel(script=[])).respond("你好", TOOLS)


def _chat_openai(url: str, timeout: float = 5.0) -> LLMBrain:
    settings = LLMSettings(base_url=url, model="deepseek-chat", api_key="k", timeout=timeout)
    return LLMBrain(make_chat_model(settings))


def test_recorded_openai_tool_calls_run_through_chat_openai() -> None:
    LOOKUPS.clear()
    recorded = [Recorded(completion(tool_calls=[("lookup_bill", {"period": "2026-05"})])),
                Recorded(completion("您2026年5月的电费为242.55元。"))]
    with replay_server(recorded) as server:
        turn = _chat_openai(server.url).respond("五月电费", TOOLS)
    assert LOOKUPS == [{"period": "2026-05"}]
    assert turn.reply == "您2026年5月的电费为242.55元。"
    first, second = server.requests
    assert {t["function"]["name"] for t in first["tools"]} == {"lookup_bill", "open_dispute"}
    assert first["messages"][0]["role"] == "system"
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and "242.55" in tool_message["content"]


def test_recorded_server_error_and_timeout_raise_llm_unavailable() -> None:
    with replay_server([Recorded(status=500)]) as server, pytest.raises(LLMUnavailable, match="500"):
        _chat_openai(server.url).respond("五月电费", TOOLS)
    with replay_server([Recorded(completion("迟到的回复"), delay=1.5)]) as server, \
            pytest.raises(LLMUnavailable, match="Timeout"):
        _chat_openai(server.url, timeout=0.3).respond("五月电费", TOOLS)


def test_recorded_reply_with_invented_number_is_caught_and_regenerated() -> None:
    recorded = [Recorded(completion(tool_calls=[("lookup_bill", {"period": "2026-05"})])),
                Recorded(completion("您5月电费242.55元，比上月多了37.80元。")),
                Recorded(completion("您5月电费242.55元。"))]
    with replay_server(recorded) as server:
        brain = _chat_openai(server.url)
        turn = brain.respond("五月电费为什么多了", TOOLS)
        evidence = evidence_from(tool_results=[parse_tool_output(c.result) for c in turn.tool_calls],
                                 user_messages=["五月电费为什么多了"])
        verdict = check_reply(turn.reply, evidence)
        assert [v.value for v in verdict.violations] == ["37.8"]
        again = brain.regenerate(turn, [v.text for v in verdict.violations])
        assert "37.80元" in server.requests[-1]["messages"][-1]["content"]
    assert check_reply(again, evidence).grounded
