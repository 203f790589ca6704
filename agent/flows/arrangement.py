"""「能不能分期交？」「缓几天交行不行」: the knowledge base's 分期/缓交 article, and a person offered —
only staff can agree a payment plan, so the agent never promises one."""

from __future__ import annotations

from agent.flows.base import Flow
from agent.flows.knowledge import KB_CANDIDATES, answer_from_knowledge_base
from agent.replies import render
from agent.turn import Turn

TOPIC = "电费分期缴纳 缓交 延期缴费"  # what the article is found by, beside the customer's own words


def payment_arrangement(turn: Turn) -> bool:
    asked = turn.parsed.clause_of.get("payment_arrangement") or turn.state.slots.get("trigger_text") or turn.text
    answer_from_knowledge_base(turn, asked, turn.toolbox.search(f"{asked} {TOPIC}", k=KB_CANDIDATES), topic=TOPIC)
    turn.say(render("arrangement_offer_person"))
    return True


FLOW = Flow(
    name="payment_arrangement", intents=("payment_arrangement",), run=payment_arrangement, needs_identity=False,
    slots=("trigger_text",), tools=("search_knowledge_base",),
    templates=("arrangement_offer_person",),  # and the knowledge flow's kb_answer / kb_not_found / kb_not_covered
)
