"""Suggested replies for a human agent watching (or taking over) a live conversation.

Each suggestion is a ready-to-send Chinese reply plus what backs it: the tool results and the
knowledge-base passages it was built from. Suggestions go through the same grounding guard as
the agent's own replies, so staff are never offered a figure nothing supports. Read-only: no
suggestion runs a write tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.grounding import check_reply, evidence_from
from agent.replies import Rendered, render, templates
from agent.state import ConversationState
from agent.toolbox import ToolBox
from tools.context import ToolContext

MAX_SUGGESTIONS = 3


@dataclass
class Suggestion:
    text: str
    why: str  # for staff: what this reply is for
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    passages: list[dict[str, Any]] = field(default_factory=list)


def suggest_replies(state: ConversationState, ctx: ToolContext,
                    limit: int = MAX_SUGGESTIONS) -> list[Suggestion]:
    """The top `limit` next replies for this conversation, best first."""
    candidates: list[Suggestion] = []
    last_user = next((h["text"] for h in reversed(state.history) if h["role"] == "user"), "")

    if state.pending is not None:
        candidates.append(Suggestion(text=state.pending.summary, why="客户尚未确认待办理事项：请复述并请客户确认",
                                     tool_results=[{"pending": state.pending.model_dump()}]))
    elif not state.verified and state.awaiting in (None, "account_no", "last4"):
        ask = render("ask_account" if not state.slots.get("account_no") else "ask_last4")
        candidates.append(Suggestion(text=ask.text, why="客户身份未核实：先核实身份再查询账户"))

    for call in state.last_tool_results:
        result = call.get("result") or {}
        message = result.get("message") if isinstance(result, dict) else None
        if message and result.get("status") in ("ok", "opened", "duplicate", "transferred"):
            candidates.append(Suggestion(text=render("tool_message", message=message).text,
                                         why=f"复述工具 {call['tool']} 的结果", tool_results=[call]))

    if last_user:
        box = ToolBox(ctx=ctx)
        found = box.search(last_user)
        for hit in found["results"][:2]:
            answer = render("kb_answer", title=hit["title"], section=hit["section"], text=_short(hit["text"]))
            candidates.append(Suggestion(text=answer.text, why="知识库中与客户问题最相关的段落",
                                         passages=[{k: hit[k] for k in ("article_id", "title", "section",
                                                                         "citation", "text")}]))

    candidates.append(Suggestion(text=render("ask_more").text, why="确认客户是否还有其他问题"))
    return _grounded(candidates, state)[:limit]


def _grounded(candidates: list[Suggestion], state: ConversationState) -> list[Suggestion]:
    """Keep suggestions whose figures are backed; mask personal numbers; drop duplicates."""
    fixed = [t.text for t in templates().values()]
    user_messages = [h["text"] for h in state.history if h["role"] == "user"]
    kept: list[Suggestion] = []
    seen: set[str] = set()
    for suggestion in candidates:
        evidence = evidence_from(tool_results=[c.get("result", c) for c in suggestion.tool_results],
                                 passages=[p["text"] for p in suggestion.passages] + fixed,
                                 user_messages=user_messages)
        verdict = check_reply(suggestion.text, evidence)
        if verdict.grounded and verdict.text not in seen:
            seen.add(verdict.text)
            suggestion.text = verdict.text
            kept.append(suggestion)
    return kept


def _short(text: str, limit: int = 200) -> str:
    text = "".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind("。", 0, limit)
    return text[: cut + 1] if cut > 0 else text[:limit] + "……"


__all__ = ["Suggestion", "suggest_replies", "Rendered"]
