"""「这个月电费为什么这么高」: every line of a bill, and why it differs from last month / last year."""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result, with_latest_fallback
from agent.replies import period_text, render
from agent.turn import Turn


def explain_bill(turn: Turn) -> bool:
    result = with_latest_fallback(turn, "explain_bill", turn.state.slots.get("period"))
    decrease = getattr(result, "decrease_vs_previous_month", None)
    if result.status == "ok" and decrease is not None:
        # 「为什么这么高」 about a bill that went down: say so first, and keep it short.
        previous = result.vs_previous_month
        turn.say(render("bill_went_down", period=period_text(result.period), amount=result.amount,
                        previous_period=period_text(previous.other_period), previous_amount=previous.other_amount,
                        decrease=decrease))
        if result.consumption_reason:
            turn.say(render("bill_went_down_reason", reason=result.consumption_reason.rstrip("。；; ")))
        turn.say(render("bill_went_down_more"))
        resolved(turn, "explain_bill")
        return True
    say_result(turn, result)
    if result.status == "ok":
        resolved(turn, "explain_bill")
    return True


FLOW = Flow(
    name="explain_bill", intents=("explain_bill",), run=explain_bill, needs_identity=True,
    slots=("period",), tools=("explain_bill",),
    templates=("bill_went_down", "bill_went_down_reason", "bill_went_down_more"),
)
