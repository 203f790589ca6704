"""「我家用电是不是不正常」: the verified customer's recent usage checked for anomalies.

`usage_insights` compares the last days with the customer's own seasonal pattern and adds the
month so far, its forecast and (agency / market customers) the cost outlook; every figure is the
billing core's. With an alert, the customer is told what they can do next (a meter check is a
dispute, a suspected electrical fault is the repair line), without any figure of ours.
"""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result
from agent.replies import render
from agent.turn import Turn


def usage_check(turn: Turn) -> bool:
    result = turn.toolbox.call("usage_insights", {})
    say_result(turn, result)
    if result.status != "ok":
        return True
    if result.alerts:
        turn.say(render("usage_alert_next"))
    resolved(turn, "usage_insights")
    return True


FLOW = Flow(
    name="usage_check", intents=("usage_check",), run=usage_check, needs_identity=True,
    tools=("usage_insights",), templates=("usage_alert_next",),
)
