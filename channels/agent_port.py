"""What a channel needs from the agent, and how its reply crosses the wire.

Every channel calls the same `Agent.handle`; a channel only adapts formats and transport. The
agent is built lazily (its models load once per process) and is passed to `create_app`, so
tests and benchmarks can hand in the agent they built themselves.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field


class AgentLike(Protocol):
    def handle(self, conversation_id: str, channel: str, text: str, message_id: str | None = None,
               **kwargs: Any) -> Any: ...

    def record_held_turn(self, conversation_id: str, user_text: str = "", reply_text: str = "",
                         channel: str | None = None) -> None: ...


class Citation(BaseModel):
    """A knowledge-base passage behind an answer, shown under it."""

    title: str = ""
    source: str = ""
    article_id: str = ""
    excerpt: str = ""


class ReplyOut(BaseModel):
    """An agent reply as every channel's API returns it."""

    conversation_id: str
    text: str
    citations: list[Citation] = Field(default_factory=list)
    awaiting: str | None = None  # the slot the reply asks for, e.g. "account_no", "csat"
    actions: list[str] = Field(default_factory=list)
    handoff: bool = False
    held_by_staff: bool = False  # a person holds the conversation; the bot did not answer
    choices: list[str] = Field(default_factory=list)  # quick replies (buttons); the text numbers them too


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if hasattr(value, "__dict__"):
        return dict(vars(value))
    return {"title": str(value)}


def _citation(raw: Any) -> Citation:
    data = _as_dict(raw)
    return Citation(
        title=str(data.get("title") or data.get("heading") or ""),
        source=str(data.get("source") or data.get("path") or data.get("url") or ""),
        article_id=str(data.get("article_id") or data.get("id") or ""),
        excerpt=str(data.get("excerpt") or data.get("text") or "")[:300],
    )


def reply_out(conversation_id: str, reply: Any) -> ReplyOut:
    """The agent's Reply as the channel's wire model (citations flattened to title/source)."""
    data = _as_dict(reply)
    actions = []
    for action in data.get("actions") or []:
        item = _as_dict(action)
        actions.append(str(item.get("tool") or item.get("name") or item.get("title") or action))
    handoff = data.get("handoff")
    return ReplyOut(
        conversation_id=conversation_id,
        text=str(data.get("text", "")),
        citations=[_citation(c) for c in data.get("citations") or []],
        awaiting=data.get("awaiting") or data.get("awaiting_slot"),
        actions=actions,
        handoff=bool(handoff),
        held_by_staff=bool(data.get("held_by_staff")),
        choices=[str(c) for c in data.get("choices") or []],
    )


def default_agent() -> AgentLike:
    """The production agent (local brain unless an LLM endpoint is configured)."""
    from agent.agent import Agent

    return Agent()
