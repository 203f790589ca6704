"""What a flow of the local brain is, and the steps flows share.

A flow serves one kind of request (a bill, a dispute, a policy question). Its module declares a
`Flow`: the intents that start it, whether the customer must be verified first, the slots it
reads, the tools it calls and the templates it renders, and its `run` step. The engine
(`agent.local_brain`) does the rest — routing, slot filling from entities, verification,
read-back and confirmation of writes, repair, the multi-intent queue — from these declarations,
so a new intent is one module (registered in `agent/flows/__init__.py`) plus its intent data and
templates. `tests/agent/test_flows.py` checks each declaration against the module's code, the
intent catalogue, the tool registry and `templates.yaml`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agent.models import Outcome
from agent.replies import format_value, render
from agent.turn import Turn


@dataclass(frozen=True)
class Flow:
    """One task flow.

    `run(turn)` does one step and returns True when the task is done (the engine moves on to the
    next queued intent) or False when it waits for a slot or for confirmation (its last reply
    says what it awaits). A flow that writes does not call the write tool itself: it puts a
    `PendingAction` for tool `confirms` on the state and reads it back; the engine runs it after
    a clear 「是」.
    """

    name: str
    intents: tuple[str, ...]  # the intents that start it; the state keeps the intent as `flow`
    run: Callable[[Turn], bool]
    needs_identity: bool  # verify the customer (engine) before the first step
    slots: tuple[str, ...] = ()  # state slots it reads or asks for
    tools: tuple[str, ...] = ()  # tools it calls (`tools.registry` names)
    templates: tuple[str, ...] = ()  # `templates.yaml` keys its module renders
    free_text_slots: tuple[str, ...] = ()  # asked-for slots whose answer is the whole message
    confirms: str | None = None  # the write tool it reads back before the engine runs it
    corrected_by: tuple[str, ...] = ()  # during the read-back, a new value of these re-runs it


@dataclass(frozen=True)
class Handoff:
    """An intent the billing desk hands to a person (or, out of scope, to another desk)."""

    intent: str
    reason: str  # `tools.transfer_to_human.HandoffReason`
    advice: str | None = None  # out of scope: where the customer should turn instead
    general_question_to_kb: bool = False  # 「新装怎么办理」 asks how, and the knowledge base answers


def say_result(turn: Turn, result: Any) -> None:
    """Say a tool's own message (its figures come from the billing core), or the error reply."""
    if result.status == "needs_verification":
        turn.state.verified = False
    if result.status == "error":
        turn.say(render("tool_error"))
        return
    turn.say(render("tool_message", message=result.message))


def resolved(turn: Turn, action: str) -> None:
    """The task was answered: record the action, and the outcome unless one is set already."""
    turn.actions.append(action)
    turn.outcome = turn.outcome or Outcome.RESOLVED


def with_latest_fallback(turn: Turn, tool: str, period: str | None) -> Any:
    """Run `tool` for `period`; if that month has no issued bill, say so and use the latest one."""
    result = turn.toolbox.call(tool, {"period": period} if period else {})
    if result.status == "not_found" and period:
        latest = turn.toolbox.call(tool, {})
        if latest.status == "ok":
            say_result(turn, result)
            turn.say(render("latest_instead"))
            turn.state.slots["period"] = getattr(latest, "period", period)
            return latest
    return result


def status_text(bill: Any) -> str:
    """A bill's payment state; a partly paid or overdue bill also says what is still owed."""
    outstanding = getattr(bill, "outstanding", None)
    if bill.status != "paid" and getattr(bill, "paid", None) and outstanding:
        return f"{bill.status_cn}，已缴{format_value(bill.paid)}元，尚欠{format_value(outstanding)}元"
    return str(bill.status_cn)


def kwh(value: Any) -> str:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number.normalize(), "f")
