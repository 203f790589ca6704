"""Simulated customers: a deterministic one for reproducible CI runs, an LLM one (tau2 guidelines).

Both speak one message at a time, reveal only what the agent asks for and never invent facts
they were not given. A conversation ends with `STOP` (the customer is done) or `TRANSFER`
(a person took over), the markers tau2's user simulator uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from evals.scenario import UserSpec

STOP = "###STOP###"
TRANSFER = "###TRANSFER###"
OUT_OF_SCOPE = "###OUT-OF-SCOPE###"
SAME_SLOT_LIMIT = 3  # the agent asking the same thing this often: the customer gives up

_PHRASES = {  # how a customer hands over what they know, when no scripted answer is given
    "account_no": "户号是{value}",
    "last4": "{value}",
    "check_answer": "{value}",
    "period": "{value}",
    "reason": "{value}",
    "description": "{value}",
}


class SimulatedUser(Protocol):
    def first_message(self) -> str: ...

    def next_message(self, reply: dict[str, Any]) -> str: ...


def _period_words(period: str) -> str:
    year, month = period.split("-") if "-" in period else ("", "")
    return f"{int(year)}年{int(month)}月" if year and month else period


@dataclass
class ScriptedUser:
    """Answers the slot the agent's reply awaits from what the persona knows; otherwise says the
    next follow-up; otherwise stops. Nothing random, so a run is reproducible."""

    spec: UserSpec
    _answers: dict[str, list[str]] = field(default_factory=dict)
    _follow_ups: list[str] = field(default_factory=list)
    _asked: dict[str, int] = field(default_factory=dict)
    turns: int = 0

    def __post_init__(self) -> None:
        self._answers = {k: list(v) for k, v in self.spec.answers.items()}
        self._follow_ups = list(self.spec.follow_ups)

    def first_message(self) -> str:
        self.turns = 1
        return self.spec.opening

    def next_message(self, reply: dict[str, Any]) -> str:
        if reply.get("handoff"):
            return TRANSFER
        if reply.get("closed") or self.turns >= self.spec.max_turns:
            return STOP
        awaiting = reply.get("awaiting")
        message = self._answer(awaiting) if awaiting else None
        if message is None and not awaiting and self._follow_ups:
            message = self._follow_ups.pop(0)
        if message is None:
            return STOP
        self.turns += 1
        return message

    def _answer(self, slot: str) -> str | None:
        self._asked[slot] = self._asked.get(slot, 0) + 1
        scripted = self._answers.get(slot)
        if scripted:
            return scripted.pop(0)
        if self._asked[slot] > SAME_SLOT_LIMIT:
            return None  # asked again and again: nothing new to say
        if slot == "confirm":
            return self.spec.confirm
        if slot == "csat":
            return self.spec.rating
        value = self.spec.knows.get(slot)
        if value is None:
            if self._follow_ups:  # the customer ignores the question and goes on with their script
                return self._follow_ups.pop(0)
            return None
        if slot == "period" and "-" in value:
            value = _period_words(value)
        return _PHRASES.get(slot, "{value}").format(value=value)


# --------------------------------------------------------------------------- LLM simulated user

USER_GUIDELINES = """你在模拟一位给电费客服发消息的客户，用来测试客服系统。
规则（来自 tau2-bench 的用户模拟指南）：
- 每次只发一条消息，像真实客户一样简短、口语化。
- 只在客服问到时才提供信息，一次只提供被问到的那一项。
- 绝不编造：没有给你的信息（户号、手机尾号、月份、金额等）就说不知道或不记得。
- 不要复述这些规则，不要扮演客服。
- 目标达成时，只回复 ###STOP###。
- 如果被转接人工客服，只回复 ###TRANSFER###。
- 如果客服一直答非所问、无法继续，回复 ###STOP###。

你的身份：{persona}
你想要：{wants}
你知道的信息：{knows}
{later}"""


def user_system_prompt(spec: UserSpec) -> str:
    knows = "；".join(f"{k}={v}" for k, v in spec.knows.items()) or "（除了开场白里说的，什么都不知道）"
    later = ("第一件事办完后，你还会依次说：" + "；".join(spec.follow_ups) + "\n") if spec.follow_ups else ""
    if spec.confirm != "是":
        later += f"客服读回要办理的事项请你确认时，你的回答是：{spec.confirm}\n"
    return USER_GUIDELINES.format(persona=spec.persona, wants=spec.wants, knows=knows, later=later)


@dataclass
class LLMUser:
    """A simulated customer played by a chat model (any LangChain chat model; `from_env` builds
    `ChatOpenAI` from POWERDESK_LLM_*). The opening message is the scenario's, so runs start alike."""

    spec: UserSpec
    model: Any
    history: list[tuple[str, str]] = field(default_factory=list)  # (role, text) from the customer's view
    turns: int = 0

    @classmethod
    def from_env(cls, spec: UserSpec) -> LLMUser:
        base_url = os.environ.get("POWERDESK_LLM_BASE_URL")
        if not base_url:
            raise RuntimeError("POWERDESK_LLM_BASE_URL: not set; the LLM simulated user needs an endpoint")
        from langchain_openai import ChatOpenAI

        model = ChatOpenAI(base_url=base_url, model=os.environ.get("POWERDESK_LLM_MODEL", "qwen2.5"),
                           api_key=os.environ.get("POWERDESK_LLM_API_KEY", "not-needed"), temperature=0,
                           timeout=30)
        return cls(spec=spec, model=model)

    def first_message(self) -> str:
        self.turns = 1
        self.history.append(("customer", self.spec.opening))
        return self.spec.opening

    def messages(self) -> list[Any]:
        """The chat as the user model sees it: it is the 'assistant', the agent is the 'user'."""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        out: list[Any] = [SystemMessage(content=user_system_prompt(self.spec))]
        for role, text in self.history:
            out.append(AIMessage(content=text) if role == "customer" else HumanMessage(content=text))
        return out

    def next_message(self, reply: dict[str, Any]) -> str:
        if reply.get("handoff"):
            return TRANSFER
        if reply.get("closed") or self.turns >= self.spec.max_turns:
            return STOP
        self.history.append(("agent", reply.get("text", "")))
        answer = self.model.invoke(self.messages())
        text = str(getattr(answer, "content", answer)).strip()
        if not text or STOP in text:
            return STOP
        if TRANSFER in text:
            return TRANSFER
        self.turns += 1
        self.history.append(("customer", text))
        return text


def llm_user_available() -> bool:
    return bool(os.environ.get("POWERDESK_LLM_BASE_URL"))
