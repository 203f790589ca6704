"""「怎么省电费」: energy-saving advice for the verified customer's own month.

Each saving is the difference of two bills computed by the billing core (`saving_advice` tool),
so the flow only frames the tool's message; a customer without enough readings is told so.
"""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result
from agent.replies import render
from agent.turn import Turn


def saving_advice(turn: Turn) -> bool:
    result = turn.toolbox.call("saving_advice", {})
    if result.status == "ok":
        turn.say(render("saving_advice_intro"))
        say_result(turn, result)
        resolved(turn, "saving_advice")
        return True
    say_result(turn, result)
    if result.status == "not_found":
        turn.say(render("saving_advice_general"))
        resolved(turn, "saving_advice")
    return True


FLOW = Flow(
    name="saving_advice", intents=("saving_advice",), run=saving_advice, needs_identity=True,
    tools=("saving_advice",), templates=("saving_advice_intro", "saving_advice_general"),
)
