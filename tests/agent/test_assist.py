"""Suggested replies for human agents: at most three, each backed by the tool results or passages
shown with it, the pending confirmation first, and never another customer's data."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.agent import Agent, AgentInputError
from tests.agent.world import ACCOUNT_A, World


def test_suggestions_carry_their_sources(world: World, make_agent: Callable[..., Agent],
                                         knowledge: Callable) -> None:
    agent = make_agent(knowledge=knowledge)
    for text in ("我想查上个月电费", ACCOUNT_A, "123X", "电费怎么交"):
        agent.handle("assist-1", "web", text)
    suggestions = agent.suggest("assist-1")
    assert 1 <= len(suggestions) <= 3
    backed = [s for s in suggestions if s.tool_results or s.passages]
    assert backed, suggestions
    for suggestion in backed:
        for call in suggestion.tool_results:
            assert call["result"]["message"] in suggestion.text
        for passage in suggestion.passages:
            assert passage["title"] in suggestion.text
    assert all(str(world.amounts["B:2026-05"]) not in s.text for s in suggestions)


def test_pending_confirmation_is_suggested_first(world: World, make_agent: Callable[..., Agent],
                                                 knowledge: Callable) -> None:
    agent = make_agent(knowledge=knowledge)
    for text in (f"户号{ACCOUNT_A}尾号123X", "5月电费读数不对，我要申请核查"):
        reply = agent.handle("assist-2", "web", text)
    assert reply.awaiting == "confirm"
    first = agent.suggest("assist-2")[0]
    assert first.text == reply.text and first.tool_results[0]["pending"]["tool"] == "open_dispute"


def test_unknown_conversation_is_refused(make_agent: Callable[..., Agent]) -> None:
    with pytest.raises(AgentInputError, match="conversation_id"):
        make_agent().suggest("nope")
