"""「交了没有」「有没有欠费」「违约金多少」: whether bills are paid, what is owed, the late fee so far."""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result, with_latest_fallback
from agent.turn import Turn

UNPAID_LOOKBACK = 12  # bills checked for arrears when the customer names no month


def _latest_then_owed(turn: Turn) -> bool:
    """「电费交了没有」 without a month: the latest issued bill first, then every older bill still
    owed, newest first — the same order on every channel, whatever was asked before.

    The latest bill alone can be paid while an older one is overdue, so those follow it. Returns
    False when the bills cannot be listed (the single-bill answer is given instead).
    """
    bills = turn.toolbox.call("lookup_bill", {"latest": UNPAID_LOOKBACK})
    if bills.status != "ok" or not bills.bills:
        return False
    ordered = sorted(bills.bills, key=lambda b: b.period, reverse=True)
    latest, older = ordered[0], ordered[1:]
    for bill in [latest, *(b for b in older if b.status != "paid")]:
        say_result(turn, turn.toolbox.call("payment_status", {"period": bill.period}))
    resolved(turn, "payment_status")
    return True


def payment_status(turn: Turn) -> bool:
    # A month counts only when this message names it: one left from an earlier question (「10月的账单」)
    # must not decide which bill 「交了没有」 leads with.
    slots = turn.state.slots
    fresh = int(slots.get("period_said_at", -1)) >= int(slots.get("task_started_at", 0))
    period = slots.get("period") if fresh else None
    if not period and _latest_then_owed(turn):
        return True
    result = with_latest_fallback(turn, "payment_status", period)
    say_result(turn, result)
    if result.status == "ok":
        resolved(turn, "payment_status")
    return True


FLOW = Flow(
    name="payment_status", intents=("payment_status", "overdue_late_fee"), run=payment_status,
    needs_identity=True, slots=("period", "period_said_at", "task_started_at"), tools=("lookup_bill", "payment_status"),
)
