"""The LLM brain: a chat model with tool calling over the same tools as the local brain.

Configured by `POWERDESK_LLM_BASE_URL`, `POWERDESK_LLM_MODEL`, `POWERDESK_LLM_API_KEY` (any
OpenAI-compatible endpoint: DeepSeek, Qwen, vLLM, Ollama). The written service policy
(`agent/policy.md`) is the system prompt. A write the registry marks for confirmation
(`ToolSpec.confirm_as`: dispute, complaint, contact phone change) is never run by the model
directly: the call is turned into a pending action the customer must confirm (the interrupt), and
the dialogue engine runs it on "是". Any endpoint error or timeout raises
`LLMUnavailable`, and the engine answers the turn with the local brain instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool

from agent.state import PendingAction
from tools.registry import BY_NAME

POLICY_FILE = Path(__file__).with_name("policy.md")
MAX_TOOL_STEPS = 6
DEFAULT_TIMEOUT_SECONDS = 20.0


class LLMUnavailable(RuntimeError):
    """The endpoint failed, timed out or misbehaved: answer this turn with the local brain."""


@dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls) -> LLMSettings | None:
        """None when no endpoint is configured (the LLM brain is then unavailable)."""
        base_url = os.environ.get("POWERDESK_LLM_BASE_URL")
        if not base_url:
            return None
        timeout = float(os.environ.get("POWERDESK_LLM_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))
        return cls(base_url=base_url, model=os.environ.get("POWERDESK_LLM_MODEL", "deepseek-chat"),
                   api_key=os.environ.get("POWERDESK_LLM_API_KEY", "not-needed"), timeout=timeout)


def make_chat_model(settings: LLMSettings) -> BaseChatModel:
    """A `ChatOpenAI` for the endpoint; no retries, because a slow turn falls back instead."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=settings.base_url, model=settings.model, api_key=settings.api_key,
                      timeout=settings.timeout, max_retries=0, temperature=0)


@lru_cache(maxsize=1)
def service_policy() -> str:
    return POLICY_FILE.read_text(encoding="utf-8")


@dataclass
class ToolCall:
    """One executed tool call: what the model asked for and what the tool returned."""

    tool: str
    arguments: dict[str, Any]
    result: Any

    def as_record(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": self.arguments, "result": parse_tool_output(self.result)}


@dataclass
class LLMTurn:
    reply: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    pending: PendingAction | None = None
    messages: list[BaseMessage] = field(default_factory=list)  # kept for a regeneration


def parse_tool_output(result: Any) -> Any:
    """Tool outputs as plain data: pydantic models dumped, JSON strings decoded."""
    if hasattr(result, "model_dump"):
        return result.model_dump(mode="json")
    if isinstance(result, str):
        text = result.strip()
        if text[:1] in "{[":
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return result
    return result


def tool_output_text(result: Any) -> str:
    """What the model reads back from a tool."""
    if isinstance(result, str):
        return result
    return json.dumps(parse_tool_output(result), ensure_ascii=False, default=str)


_ARGUMENT_LABELS = {"period": "账单月份", "category": "类别", "reason": "原因", "description": "投诉内容",
                    "contact": "联系电话", "urgent": "紧急", "new_phone": "新联系电话"}


def needs_confirmation(tool: str) -> bool:
    """Whether the model's call of `tool` stops for the customer's 「是」 (the registry's `confirm_as`)."""
    spec = BY_NAME.get(tool)
    return spec is not None and spec.confirms


def _describe_write(tool: str, arguments: dict[str, Any]) -> str:
    """The sentence read back before a write; values are the model's arguments, shown verbatim
    (the guard masks a phone number in it, as the local brain's read-back does)."""
    from tools.intake_complaint import CATEGORY_CN as COMPLAINT_CN
    from tools.open_dispute import CATEGORY_CN as DISPUTE_CN

    label = BY_NAME[tool].confirm_as
    categories = {"open_dispute": DISPUTE_CN, "intake_complaint": COMPLAINT_CN}.get(tool, {})
    details = []
    for key, value in arguments.items():
        if value in (None, "", False):
            continue
        shown = categories.get(str(value), value) if key == "category" else ("是" if value is True else value)
        details.append(f"{_ARGUMENT_LABELS.get(key, key)}：{shown}")
    shown_details = f"（{'，'.join(details)}）" if details else ""
    return f"我将为您{label}{shown_details}。确认办理请回复“是”，不办理请回复“否”。"


class LLMBrain:
    """Runs one turn: model ↔ tools until the model answers, or stops at a write for confirmation."""

    def __init__(self, model: BaseChatModel, max_steps: int = MAX_TOOL_STEPS) -> None:
        self.model = model
        self.max_steps = max_steps

    @classmethod
    def from_env(cls) -> LLMBrain | None:
        settings = LLMSettings.from_env()
        return cls(make_chat_model(settings)) if settings else None

    def _invoke(self, runnable: Any, messages: list[BaseMessage]) -> AIMessage:
        try:
            answer = runnable.invoke(messages)
        except Exception as exc:  # openai.APIError, timeouts, connection errors, bad JSON …
            raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(answer, AIMessage):
            raise LLMUnavailable(f"unexpected model output {type(answer).__name__}")
        return answer

    def respond(self, user_text: str, tools: Sequence[BaseTool], history: Sequence[dict[str, str]] = (),
                context: str = "") -> LLMTurn:
        """Answer `user_text` given the conversation so far and a short context note (who is verified)."""
        messages = _opening(user_text, history, context)
        by_name = {tool.name: tool for tool in tools}
        runnable = self.model.bind_tools(list(tools)) if tools else self.model
        calls: list[ToolCall] = []
        for _ in range(self.max_steps):
            answer = self._invoke(runnable, messages)
            messages.append(answer)
            if not answer.tool_calls:
                return LLMTurn(reply=_text_of(answer), tool_calls=calls, messages=messages)
            pending = _run_tool_calls(answer, by_name, calls, messages)
            if pending is not None:
                return LLMTurn(reply=pending.summary, tool_calls=calls, pending=pending, messages=messages)
        raise LLMUnavailable(f"no answer after {self.max_steps} tool steps")

    def respond_stream(self, user_text: str, tools: Sequence[BaseTool], into: LLMTurn,
                       history: Sequence[dict[str, str]] = (), context: str = "") -> Iterator[str]:
        """`respond`, with the final answer yielded as text deltas as the model streams them.

        Tool-call steps are streamed too but resolved (tools run) before the next step, so every
        tool result is in hand before the answer's first words. `into` is filled as the turn goes
        (messages, tool calls, pending write, the reply so far), so a caller that stops reading
        early — a held sentence — still has what a regeneration needs. The reply is the text
        yielded, whichever step it came from (a model that writes a preamble before its tool call
        has that preamble shown, as it was streamed). Errors raise `LLMUnavailable`, also mid-stream.
        """
        into.messages[:] = _opening(user_text, history, context)
        by_name = {tool.name: tool for tool in tools}
        runnable = self.model.bind_tools(list(tools)) if tools else self.model
        for _ in range(self.max_steps):
            answer: AIMessageChunk | None = None
            try:
                for chunk in runnable.stream(into.messages):
                    if not isinstance(chunk, AIMessageChunk):
                        raise LLMUnavailable(f"unexpected model output {type(chunk).__name__}")
                    answer = chunk if answer is None else answer + chunk
                    text = _text_of_chunk(chunk)
                    if text and not answer.tool_call_chunks:
                        if not into.reply:
                            text = text.lstrip()
                        if text:
                            into.reply += text
                            yield text
            except LLMUnavailable:
                raise
            except Exception as exc:  # openai.APIError, read timeouts mid-stream, bad chunks …
                raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from exc
            if answer is None:
                raise LLMUnavailable("empty stream")
            message = AIMessage(content=answer.content, tool_calls=answer.tool_calls, id=answer.id)
            into.messages.append(message)
            if not message.tool_calls:
                into.reply = into.reply.rstrip()
                return
            pending = _run_tool_calls(message, by_name, into.tool_calls, into.messages)
            if pending is not None:
                into.pending = pending
                into.reply += pending.summary
                yield pending.summary
                return
        raise LLMUnavailable(f"no answer after {self.max_steps} tool steps")

    def regenerate(self, turn: LLMTurn, unbacked: Sequence[str]) -> str:
        """Ask once more, naming the figures no tool result backs."""
        note = ("上面的回复包含没有来源的数字：" + "、".join(unbacked) +
                "。请重写回复：只使用工具结果、知识库段落或客户原话中的数字，不要自行计算或编造。")
        messages = [*turn.messages, HumanMessage(note)]
        return _text_of(self._invoke(self.model, messages))


def _opening(user_text: str, history: Sequence[dict[str, str]], context: str) -> list[BaseMessage]:
    """The system prompt (policy + session note), the conversation so far and the new message."""
    system = service_policy() + (f"\n\n## 当前会话\n{context}" if context else "")
    messages: list[BaseMessage] = [SystemMessage(system)]
    for item in history:
        messages.append(HumanMessage(item["text"]) if item["role"] == "user" else AIMessage(item["text"]))
    messages.append(HumanMessage(user_text))
    return messages


def _run_tool_calls(answer: AIMessage, by_name: dict[str, BaseTool], calls: list[ToolCall],
                    messages: list[BaseMessage]) -> PendingAction | None:
    """Run the tools the model asked for; a write to confirm stops here as a pending action."""
    for call in answer.tool_calls:
        name, arguments = call["name"], dict(call.get("args") or {})
        if needs_confirmation(name):
            return PendingAction(tool=name, arguments=arguments, summary=_describe_write(name, arguments))
        tool = by_name.get(name)
        if tool is None:
            output: Any = json.dumps({"status": "invalid_input", "message": f"没有名为 {name} 的工具"},
                                     ensure_ascii=False)
        else:
            try:
                output = tool.invoke(arguments)
            except Exception as exc:  # a bad argument from the model: tell it, don't crash the turn
                output = json.dumps({"status": "invalid_input", "message": str(exc)}, ensure_ascii=False)
        calls.append(ToolCall(tool=name, arguments=arguments, result=output))
        messages.append(ToolMessage(content=tool_output_text(output), tool_call_id=call.get("id") or name))
    return None


def _text_of_chunk(chunk: AIMessageChunk) -> str:
    content = chunk.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _text_of(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content.strip()
    parts = [part.get("text", "") if isinstance(part, dict) else str(part) for part in content]
    return "".join(parts).strip()
