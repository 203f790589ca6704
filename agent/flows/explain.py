"""「这个月电费为什么这么高」: every line of a bill, and why it differs from last month / last year.

「为什么我的电费是估抄的」: whether this bill's energy rests on an estimated reading — which reading,
from the billing core's reading source — then the article on what an estimate means and how an
actual reading corrects it, cited.
"""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result, with_latest_fallback
from agent.flows.knowledge import KB_CANDIDATES, answer_from_knowledge_base
from agent.nlu.questions import asks_about_estimate
from agent.replies import period_text, render
from agent.turn import Turn

ESTIMATE_TOPIC = "估抄以后怎么办"


def explain_bill(turn: Turn) -> bool:
    result = with_latest_fallback(turn, "explain_bill", turn.state.slots.get("period"))
    asked = turn.state.slots.get("trigger_text") or turn.text
    if result.status == "ok" and asks_about_estimate(asked):
        period = period_text(result.period)
        if result.reading_note:
            turn.say(render("estimate_answer", period=period, note=result.reading_note))
        else:
            turn.say(render("estimate_unknown", period=period))
        resolved(turn, "explain_bill")
        # What an estimate is and how the actual reading corrects it: the flow knows that is the
        # topic, as the arrangement flow knows 分期/缓交 (judged as the topic, not as asked words).
        search = turn.toolbox.search(f"{asked} {ESTIMATE_TOPIC}", k=KB_CANDIDATES)
        answer_from_knowledge_base(turn, asked, search, topic=ESTIMATE_TOPIC)
        return True
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
    slots=("period", "trigger_text"), tools=("explain_bill", "search_knowledge_base"),
    templates=("bill_went_down", "bill_went_down_reason", "bill_went_down_more", "estimate_answer",
               "estimate_unknown"),
)
