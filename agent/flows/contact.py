"""「我登记的手机号是多少？地址呢？」: what is on file, masked by the tool (phone 138****8000,
address to the street). Changing the phone is `change_phone.py`."""

from __future__ import annotations

from agent.flows.base import Flow, resolved, say_result
from agent.turn import Turn


def contact_info(turn: Turn) -> bool:
    result = turn.toolbox.call("contact_info", {})
    say_result(turn, result)
    if result.status == "ok":
        resolved(turn, "contact_info")
    return True


CONTACT_INFO = Flow(
    name="contact_info", intents=("query_contact_info",), run=contact_info, needs_identity=True,
    tools=("contact_info",),
)
