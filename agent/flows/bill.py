"""「上个月电费多少」: the verified customer's bills — one month, or the latest n.

This month has no bill until the month is over: 「这个月大概要交多少」 gets the month so far and
the forecast (`forecast_bill`, figures from the billing core) instead of "no bill found".
"""

from __future__ import annotations

from typing import Any

from agent.flows.base import Flow, kwh, resolved, say_result, status_text
from agent.models import Outcome
from agent.replies import format_value, period_text, render
from agent.turn import Turn


def _say_bills(turn: Turn, bills: list[Any]) -> None:
    for bill in bills:
        due = f"，缴费截止日{format_value(bill.due_date)}" if bill.due_date else ""
        turn.say(render("bill_line", period=period_text(bill.period), total_kwh=kwh(bill.total_kwh),
                        amount=bill.amount, due=due, status_cn=status_text(bill)))


def lookup_bill(turn: Turn) -> bool:
    period = turn.state.slots.get("period")
    latest = int(turn.state.slots.get("latest") or 1)
    result = turn.toolbox.call("lookup_bill", {"period": period} if period else {"latest": latest})
    if result.status == "ok":
        _say_bills(turn, result.bills)
        resolved(turn, "lookup_bill")
        return True
    if result.status == "not_found" and period == f"{turn.today:%Y-%m}":
        forecast = turn.toolbox.call("forecast_bill", {})
        if forecast.status == "ok":
            turn.say(render("forecast_instead"))
            say_result(turn, forecast)
            resolved(turn, "forecast_bill")
            return True
    say_result(turn, result)
    if result.status == "not_found" and period:
        latest_bill = turn.toolbox.call("lookup_bill", {"latest": 1})
        if latest_bill.status == "ok":  # say what there is, so the customer is not left empty-handed
            turn.say(render("latest_instead"))
            _say_bills(turn, latest_bill.bills)
            turn.state.slots["period"] = latest_bill.bills[0].period
            turn.outcome = turn.outcome or Outcome.RESOLVED
    return True


FLOW = Flow(
    name="lookup_bill", intents=("lookup_bill",), run=lookup_bill, needs_identity=True,
    slots=("period", "latest"), tools=("lookup_bill", "forecast_bill"),
    templates=("bill_line", "latest_instead", "forecast_instead"),
)
