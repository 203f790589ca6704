"""The local brain's flows, registered in one place.

Each flow lives in its own module and declares a `Flow` (`agent.flows.base`); hand-offs are
declared in `handoff.py`. The engine (`agent.local_brain`) reads only what is derived here.

Adding an intent the agent serves: its examples in `agent/nlu/data/` (intents.yaml, train.yaml,
heldout.yaml), its replies in `agent/templates.yaml`, a module here with its `FLOW` — and the
module's line in `FLOWS` below. A tool it needs is a `ToolSpec` in `tools/registry.py`.
"""

from __future__ import annotations

from agent.flows import (
    arrangement, bill, change_phone, clarify, complaint, contact, dispute, explain, handoff, knowledge, payment, saving, usage,
)
from agent.flows.base import Flow, Handoff

FLOWS: tuple[Flow, ...] = (
    bill.FLOW,
    explain.FLOW,
    payment.FLOW,
    knowledge.FLOW,
    dispute.FLOW,
    complaint.FLOW,
    contact.CONTACT_INFO,
    change_phone.FLOW,
    arrangement.FLOW,
    saving.FLOW,
    usage.FLOW,
)
HANDOFFS: tuple[Handoff, ...] = handoff.HANDOFFS


def _by_intent() -> dict[str, Flow]:
    found: dict[str, Flow] = {}
    for flow in FLOWS:
        for intent in flow.intents:
            if intent in found:
                raise ValueError(f"intents: {intent!r} is claimed by flows {found[intent].name} and {flow.name}")
            found[intent] = flow
    return found


BY_INTENT: dict[str, Flow] = _by_intent()
BY_WRITE: dict[str, Flow] = {flow.confirms: flow for flow in FLOWS if flow.confirms}
HANDOFF_BY_INTENT: dict[str, Handoff] = {h.intent: h for h in HANDOFFS}

# Derived sets the engine routes on.
TASKS = frozenset(BY_INTENT)  # intents that start a flow
NEEDS_IDENTITY = frozenset(i for i, flow in BY_INTENT.items() if flow.needs_identity)
FLOW_FREE_TEXT_SLOTS = frozenset(slot for flow in FLOWS for slot in flow.free_text_slots)

__all__ = [
    "BY_INTENT", "clarify", "BY_WRITE", "FLOWS", "FLOW_FREE_TEXT_SLOTS", "HANDOFFS", "HANDOFF_BY_INTENT", "NEEDS_IDENTITY",
    "TASKS", "Flow", "Handoff",
]
