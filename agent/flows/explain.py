"""「这个月电费为什么这么高」: every line of a bill, and why it differs from last month / last year."""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result, with_latest_fallback
from agent.turn import Turn


def explain_bill(turn: Turn) -> bool:
    result = with_latest_fallback(turn, "explain_bill", turn.state.slots.get("period"))
    say_result(turn, result)
    if result.status == "ok":
        resolved(turn, "explain_bill")
    return True


FLOW = Flow(
    name="explain_bill", intents=("explain_bill",), run=explain_bill, needs_identity=True,
    slots=("period",), tools=("explain_bill",),
)
