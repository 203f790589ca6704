"""「转人工」「停电了」「我要报装」: a person takes over (out of scope: with where to turn instead)."""

from __future__ import annotations

from agent.flows.base import Handoff
from agent.models import Outcome
from agent.replies import render
from agent.turn import Turn

HANDOFFS: tuple[Handoff, ...] = (
    Handoff("transfer_to_human", "customer_asked"),
    Handoff("outage_report", "out_of_scope", advice="停电抢修、用电安全问题请直接拨打95598。"),
    Handoff("new_connection", "out_of_scope", advice="新装、增容、过户等业务可通过南网在线或到营业厅办理。",
            general_question_to_kb=True),
)
TOOLS = ("transfer_to_human",)
TEMPLATES = ("handoff", "handoff_unavailable", "out_of_scope")


def hand_off(turn: Turn, handoff: Handoff, summary: str) -> None:
    """Create the hand-off request and tell the customer its number; whatever was pending is dropped."""
    state = turn.state
    result = turn.toolbox.call("transfer_to_human", {"reason": handoff.reason, "summary": summary})
    state.pending, state.flow, state.queue = None, None, []
    if result.status != "transferred":
        turn.say(render("handoff_unavailable"))
        return
    if handoff.advice is not None:
        turn.say(render("out_of_scope", advice=handoff.advice, handoff_no=result.handoff_no))
    else:
        turn.say(render("handoff", handoff_no=result.handoff_no))
    turn.handoff, turn.outcome = True, Outcome.TRANSFERRED
    turn.actions.append("transfer_to_human")
