"""「交了没有」「有没有欠费」「违约金多少」: whether bills are paid, what is owed, the late fee so far."""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result, with_latest_fallback
from agent.turn import Turn

UNPAID_LOOKBACK = 12  # bills checked for arrears when the customer names no month


def _all_unpaid(turn: Turn) -> bool:
    """「有没有欠费」 without a month: the status of every bill still owed, oldest first.

    The latest bill alone can be paid while an older one is overdue. Returns False when nothing
    is owed (the latest bill's status then answers) or the bills cannot be listed.
    """
    bills = turn.toolbox.call("lookup_bill", {"latest": UNPAID_LOOKBACK})
    if bills.status != "ok":
        return False
    owed = sorted((b for b in bills.bills if b.status != "paid"), key=lambda b: b.period)
    if not owed:
        return False
    for bill in owed:
        say_result(turn, turn.toolbox.call("payment_status", {"period": bill.period}))
    resolved(turn, "payment_status")
    return True


def payment_status(turn: Turn) -> bool:
    period = turn.state.slots.get("period")
    if not period and _all_unpaid(turn):
        return True
    result = with_latest_fallback(turn, "payment_status", period)
    say_result(turn, result)
    if result.status == "ok":
        resolved(turn, "payment_status")
    return True


FLOW = Flow(
    name="payment_status", intents=("payment_status", "overdue_late_fee"), run=payment_status,
    needs_identity=True, slots=("period",), tools=("lookup_bill", "payment_status"),
)
