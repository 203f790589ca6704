"""Each flow module's declaration agrees with its code, the intent data, the tools and the templates.

A flow is one module declaring what it needs (`agent.flows.base.Flow`); the engine routes on the
declarations only. These checks catch the drift that would otherwise show up mid-conversation: a
template the module renders but does not declare, a tool missing from the registry, a task intent
the classifier predicts that no flow serves.
"""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

from agent.flows import BY_INTENT, FLOWS, HANDOFFS, NEEDS_IDENTITY, TASKS, handoff
from agent.flows.base import Flow
from agent.nlu.intent_data import IntentCategory, load_intents
from agent.replies import templates
from tools.registry import BY_NAME


def _module(flow: Flow) -> ModuleType:
    module = inspect.getmodule(flow.run)
    assert module is not None
    return module


def _literal_calls(module: ModuleType) -> tuple[set[str], set[str]]:
    """Templates rendered and tools called in the module's source, as written there."""
    rendered, called = set(), set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        strings = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if name == "render":
            rendered.update(strings[:1])
        elif name in ("call", "with_latest_fallback"):  # toolbox.call("x", …), with_latest_fallback(turn, "x", …)
            called.update(strings[:1])
        elif name == "search":  # toolbox.search(query): the knowledge-base tool
            called.add("search_knowledge_base")
        elif name == "PendingAction":  # a write the engine runs after the read-back
            called.update(k.value.value for k in node.keywords
                          if k.arg == "tool" and isinstance(k.value, ast.Constant))
    return rendered, called


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_a_flow_declares_what_its_module_renders_and_calls(flow: Flow) -> None:
    rendered, called = _literal_calls(_module(flow))
    assert rendered == set(flow.templates)
    assert called == set(flow.tools)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_a_flows_tools_templates_and_slots_exist(flow: Flow) -> None:
    known = templates()
    for name in flow.tools:
        spec = BY_NAME[name]
        assert not spec.needs_principal or flow.needs_identity, f"{name} needs a verified customer"
    if flow.confirms is not None:
        assert flow.confirms in flow.tools and BY_NAME[flow.confirms].confirms
    for key in flow.templates:
        awaiting = known[key].awaiting
        assert awaiting is None or awaiting == "confirm" or awaiting in flow.slots, key
    assert set(flow.free_text_slots) <= set(flow.slots) and set(flow.corrected_by) <= set(flow.slots)


def test_every_task_intent_has_one_flow_and_every_handoff_intent_a_handoff() -> None:
    catalogue = load_intents()
    tasks = {name for name, spec in catalogue.items() if spec.category is IntentCategory.TASK}
    # An intent recognised before its flow exists is served as another one (intents.yaml `served_as`).
    waiting = {name: spec.served_as for name, spec in catalogue.items() if spec.served_as}
    assert TASKS == tasks - {"provide_identity"} - set(waiting)  # identity is the engine's own step
    assert all(target in TASKS or target == "provide_identity" for target in waiting.values()), waiting
    assert sum(len(f.intents) for f in FLOWS) == len(BY_INTENT)  # no intent claimed twice
    handoffs = {name for name, spec in catalogue.items() if spec.category is IntentCategory.HANDOFF}
    assert {h.intent for h in HANDOFFS} == handoffs
    assert NEEDS_IDENTITY == {"lookup_bill", "explain_bill", "payment_status", "overdue_late_fee",
                              "open_dispute", "complaint", "query_contact_info", "change_contact_phone",
                              "saving_advice", "usage_check"}


def test_the_handoff_module_declares_what_it_renders_and_calls() -> None:
    rendered, called = _literal_calls(handoff)
    assert rendered == set(handoff.TEMPLATES) and called == set(handoff.TOOLS)
    assert all(key in templates() for key in handoff.TEMPLATES)
