"""「5月电费不对，申请核查」: a 电费异议 work order for one month's bill, read back before it is opened."""

from __future__ import annotations

import re

from agent.flows.base import Flow
from agent.nlu.categories import dispute_category, gives_dispute_reason
from agent.replies import period_text, render
from agent.state import PendingAction
from agent.turn import Turn

# A bare 「是」「好的」「不知道」 answers a yes/no question, not 「what is wrong with the bill」.
_NOT_A_REASON = re.compile(r"^(是|是的|对|对的|好|好的|嗯|嗯嗯|确认|确定|可以|行|有|没有|不知道|不清楚|ok|OK|yes)?$")


def is_reason(text: str) -> bool:
    """Whether an answer to 「请说明原因」 can stand as a dispute reason."""
    bare = re.sub(r"[\s。，,.！!？?、~～]+", "", text)
    return _NOT_A_REASON.match(bare) is None


def open_dispute(turn: Turn) -> bool:
    state = turn.state
    period = state.slots.get("period")
    if not period:
        turn.say(render("ask_dispute_period"))
        return False
    reason = state.slots.get("reason")
    if reason and not is_reason(reason):
        state.slots.pop("reason", None)
        turn.say(render("ask_dispute_reason_again", period=period_text(period)))
        return False
    if not reason:
        trigger = state.slots.get("trigger_text", "")
        if gives_dispute_reason(trigger):
            reason = state.slots["reason"] = trigger.strip()
        else:
            turn.say(render("ask_dispute_reason", period=period_text(period)))
            return False
    arguments = {"period": period, "category": dispute_category(reason), "reason": reason}
    confirm = render("confirm_dispute", period=period_text(period), reason=reason)
    state.pending = PendingAction(tool="open_dispute", arguments=arguments, summary=confirm.text)
    turn.say(confirm)
    return False


FLOW = Flow(
    name="open_dispute", intents=("open_dispute",), run=open_dispute, needs_identity=True,
    slots=("period", "reason", "trigger_text"), tools=("open_dispute",),
    templates=("ask_dispute_period", "ask_dispute_reason", "ask_dispute_reason_again", "confirm_dispute"),
    free_text_slots=("reason",), confirms="open_dispute", corrected_by=("period",),
)
