"""Simulated customers: the scripted one answers only what is asked; the LLM one follows tau2's
guidelines (tested with a scripted chat model; live LLM quality is not measured here)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from evals.scenario import UserSpec
from evals.user_sim import STOP, TRANSFER, LLMUser, ScriptedUser, user_system_prompt

SPEC = UserSpec(wants="查电费", opening="查电费", knows={"account_no": "440100100001", "last4": "8000",
                                                         "period": "2026-05"},
                answers={"last4": ["1234"]}, follow_ups=["怎么交电费"])


def test_scripted_user_answers_awaited_slot_from_what_it_knows():
    user = ScriptedUser(SPEC)
    assert user.first_message() == "查电费"
    assert user.next_message({"text": "请提供户号", "awaiting": "account_no"}) == "户号是440100100001"
    assert user.next_message({"text": "后4位?", "awaiting": "last4"}) == "1234"  # scripted wrong answer first
    assert user.next_message({"text": "后4位?", "awaiting": "last4"}) == "8000"
    assert user.next_message({"text": "哪个月?", "awaiting": "period"}) == "2026年5月"
    assert user.next_message({"text": "确认吗", "awaiting": "confirm"}) == "是"
    assert user.next_message({"text": "好的", "awaiting": None}) == "怎么交电费"
    assert user.next_message({"text": "好的", "awaiting": None}) == STOP


def test_scripted_user_never_invents_and_stops_on_handoff():
    user = ScriptedUser(UserSpec(wants="x", opening="查电费"))
    user.first_message()
    assert user.next_message({"text": "请提供户号", "awaiting": "account_no"}) == STOP  # knows no 户号
    assert ScriptedUser(SPEC).next_message({"text": "已转人工", "handoff": True}) == TRANSFER


def test_scripted_user_gives_up_when_asked_the_same_thing_again_and_again():
    user = ScriptedUser(UserSpec(wants="x", opening="查电费", knows={"account_no": "440100100001"}))
    user.first_message()
    answers = [user.next_message({"awaiting": "account_no"}) for _ in range(5)]
    assert answers[:3] == ["户号是440100100001"] * 3 and answers[3] == STOP


class _Scripted(BaseChatModel):
    script: list[str]
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.script.pop(0)))])


def test_llm_user_plays_the_customer_role_and_ends_on_stop():
    model = _Scripted(script=["440100100001", "好的，谢谢。###STOP###"])
    user = LLMUser(SPEC, model)
    assert user.first_message() == "查电费"
    assert user.next_message({"text": "请提供您的12位户号。", "awaiting": "account_no"}) == "440100100001"
    sent = model.seen[0]
    assert isinstance(sent[0], SystemMessage) and "只在客服问到时才提供信息" in sent[0].content
    assert "account_no=440100100001" in sent[0].content
    # The customer is the model's own voice (AI), the agent speaks to it as the human.
    assert isinstance(sent[1], AIMessage) and sent[1].content == "查电费"
    assert isinstance(sent[2], HumanMessage) and sent[2].content == "请提供您的12位户号。"
    assert user.next_message({"text": "您的电费是…", "awaiting": None}) == STOP
    assert user.next_message({"text": "已为您转接人工", "handoff": True}) == TRANSFER


def test_user_prompt_says_what_is_not_known():
    assert "什么都不知道" in user_system_prompt(UserSpec(wants="x", opening="y"))


def test_user_prompt_carries_follow_ups_and_a_declined_confirmation():
    prompt = user_system_prompt(UserSpec(wants="x", opening="y", follow_ups=["怎么交电费"], confirm="否"))
    assert "怎么交电费" in prompt and "你的回答是：否" in prompt
