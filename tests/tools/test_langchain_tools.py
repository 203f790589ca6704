"""LangChain faces of the tools: schemas without account numbers, calls bound to the context."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import ToolMessage
from sqlalchemy import select

from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World
from tools.langchain_tools import make_langchain_tools
from tools.models import AuditEvent
from tools.registry import TOOLS


def _by_name(world: World, conversation: str = "lc-1") -> dict:
    return {t.name: t for t in make_langchain_tools(world.ctx(conversation))}


def test_every_registered_tool_is_exposed_with_its_schema(world: World) -> None:
    tools = _by_name(world)
    assert list(tools) == [spec.name for spec in TOOLS]
    for name, tool in tools.items():
        properties = tool.tool_call_schema.model_json_schema().get("properties", {})
        if name == "verify_identity":
            assert {"account_no", "last4", "method", "check_answer"} <= set(properties)
        else:
            assert "account_no" not in properties, name
    required = tools["open_dispute"].tool_call_schema.model_json_schema()["required"]
    assert set(required) == {"period", "category", "reason"}
    assert tools["open_dispute"].metadata["writes"] is True
    assert tools["lookup_bill"].metadata["writes"] is False
    assert tools["open_dispute"].metadata["confirms"] is True
    assert tools["transfer_to_human"].metadata["confirms"] is False  # a write that runs when called


def test_tool_calls_run_for_the_bound_conversation(world: World) -> None:
    tools = _by_name(world)
    message = tools["verify_identity"].invoke({"type": "tool_call", "id": "call-1", "name": "verify_identity",
                                               "args": {"account_no": ACCOUNT_A, "last4": "8000"}})
    assert isinstance(message, ToolMessage) and json.loads(message.content)["status"] == "verified"
    message = tools["lookup_bill"].invoke({"type": "tool_call", "id": "call-2", "name": "lookup_bill",
                                           "args": {"period": "2026-05"}})
    assert message.artifact.bills[0].period == "2026-05"
    assert json.loads(message.content)["account_no"] == ACCOUNT_A


def test_an_account_number_from_the_model_is_refused_and_audited(world: World) -> None:
    tools = _by_name(world, "lc-2")
    tools["verify_identity"].invoke({"account_no": ACCOUNT_A, "last4": "8000"})
    message = tools["lookup_bill"].invoke({"type": "tool_call", "id": "call-3", "name": "lookup_bill",
                                           "args": {"account_no": ACCOUNT_B}})
    content = json.loads(message.content)
    assert content["status"] == "invalid_input" and content["field"] == "account_no"
    assert message.status == "error"
    with world.sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.conversation_id == "lc-2")).all()
    assert [(e.tool, e.status) for e in events][-1] == ("lookup_bill", "invalid_input")
    assert events[-1].arguments == {"account_no": ACCOUNT_B}  # what the model tried is on record


def test_unknown_tool_names_are_refused(world: World) -> None:
    with pytest.raises(KeyError, match="names"):
        make_langchain_tools(world.ctx(), ["lookup_bill", "delete_everything"])
