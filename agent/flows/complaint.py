"""「我要投诉营业厅态度差」: a complaint work order, read back before it is opened."""

from __future__ import annotations

from agent.flows.base import Flow
from agent.nlu.categories import complaint_category
from agent.replies import render
from agent.state import PendingAction
from agent.turn import Turn

MIN_DESCRIPTION_CHARS = 10  # a shorter opening message (「我要投诉」) does not say what happened


def complaint(turn: Turn) -> bool:
    state = turn.state
    description = state.slots.get("description")
    if not description:
        trigger = state.slots.get("trigger_text", "").strip()
        if len(trigger) >= MIN_DESCRIPTION_CHARS:
            description = state.slots["description"] = trigger
        else:
            turn.say(render("ask_complaint_description"))
            return False
    arguments = {"category": complaint_category(description), "description": description}
    confirm = render("confirm_complaint", description=description)
    state.pending = PendingAction(tool="intake_complaint", arguments=arguments, summary=confirm.text)
    turn.say(confirm)
    return False


FLOW = Flow(
    name="complaint", intents=("complaint",), run=complaint, needs_identity=True,
    slots=("description", "trigger_text"), tools=("intake_complaint",),
    templates=("ask_complaint_description", "confirm_complaint"),
    free_text_slots=("description",), confirms="intake_complaint",
)
