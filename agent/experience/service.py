"""Differentiated service in the conversation (guide §8.7): what a customer's class or history
changes in the agent's reply, after the brain has answered.

- A customer whose class says `offer_person_first` (特级/一级重要客户) is offered a person as soon
  as verified.
- A customer who already contacted us about the same bill within the window
  (`rules.repeat_bill_contact`) is offered a person at once when asking about it again.

Offered once per conversation, never while a person already holds it. The complaint SLA and
queue of a class are applied by the complaint tool itself (`ToolContext.service_level`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent.experience.classes import standing
from agent.experience.negative.pipeline import DUE_SLOT as REMEDY_DUE_SLOT
from agent.experience.negative.pipeline import OFFER_SLOT as REMEDY_OFFER_SLOT
from agent.experience.policy import ClassificationPolicy, load_policy
from agent.models import ConversationRecord, TurnRecord
from agent.replies import Rendered
from agent.turn import Turn


BILL_TOOLS = frozenset({"lookup_bill", "explain_bill", "open_dispute", "payment_status"})
OFFERED_SLOT = "cx_person_offered"
PERSON_CHOICE = "转人工客服"


def bill_periods(tool_calls: Iterable[dict[str, Any]]) -> set[str]:
    """The billing periods a turn's bill tools were about (their arguments and results)."""
    found: set[str] = set()
    for call in tool_calls:
        if call.get("tool") not in BILL_TOOLS:
            continue
        arguments, result = call.get("arguments") or {}, call.get("result") or {}
        if not isinstance(result, dict) or result.get("status") not in ("ok", "opened", "duplicate"):
            continue
        for value in (arguments.get("period"), result.get("period")):
            if isinstance(value, str) and len(value) == 7:
                found.add(value)
        for bill in result.get("bills") or []:
            if isinstance(bill, dict) and isinstance(bill.get("period"), str):
                found.add(bill["period"])
    return found


def earlier_contacts_about(session: Session, account_no: str, periods: set[str], conversation_id: str,
                           since: datetime) -> list[int]:
    """Record ids of this customer's other conversations since `since` whose bill tools touched `periods`."""
    conversations = dict(session.execute(
        select(ConversationRecord.id, ConversationRecord.conversation_id)
        .where(ConversationRecord.account_no == account_no, ConversationRecord.started_at >= since,
               ConversationRecord.conversation_id != conversation_id)).all())
    if not conversations:
        return []
    hits: set[int] = set()
    for pk, calls in session.execute(select(TurnRecord.conversation_pk, TurnRecord.tool_calls)
                                     .where(TurnRecord.conversation_pk.in_(list(conversations)))):
        if bill_periods(calls or []) & periods:
            hits.add(int(pk))
    return sorted(hits)


def _offer(turn: Turn, text: str, template: str) -> None:
    if turn.reply_text is not None:  # the reply is already composed (and checked): keep its question last
        question = turn.parts[-1] if turn.parts and turn.parts[-1].awaiting else None
        if question is not None and question.text and turn.reply_text.endswith(question.text):
            turn.reply_text = f"{turn.reply_text[: -len(question.text)]}{text}{question.text}"
        else:
            turn.reply_text = f"{turn.reply_text}{text}"
    else:
        offer = Rendered(text=text, awaiting=None, template=template)
        if turn.parts and turn.parts[-1].awaiting:
            turn.parts.insert(len(turn.parts) - 1, offer)  # the question the customer answers stays last
        else:
            turn.parts.append(offer)
    if PERSON_CHOICE not in turn.choices:
        turn.choices.append(PERSON_CHOICE)
    turn.state.slots[OFFERED_SLOT] = True
    turn.actions.append(template)


def apply_service_rules(turn: Turn, sessions: sessionmaker[Session], now: datetime,
                        policy: ClassificationPolicy | None = None) -> None:
    """Add what the customer's class or contact history calls for to this turn's reply."""
    state = turn.state
    if (not state.verified or not state.account_no or turn.handoff or state.handed_off
            or state.slots.get(OFFERED_SLOT) or state.closed):
        return
    if state.slots.get(REMEDY_OFFER_SLOT) or state.slots.get(REMEDY_DUE_SLOT):
        return  # a negative experience already apologised and offered its remedy: one offer, not two
    just_verified = "verify_identity" in turn.actions
    periods = bill_periods(call.as_dict() for call in turn.toolbox.calls if call.tool in BILL_TOOLS)
    if not just_verified and not periods:
        return  # most turns: nothing to look up
    policy = policy or load_policy()
    with sessions() as session:
        if just_verified:
            who = standing(session, state.account_no, policy)
            if who.offer_person_first:
                first = next(c for c in who.classes if c.service.offer_person_first)
                _offer(turn, f"您是我们的{first.name}，{first.service.standard}如需人工服务，回复“转人工”即可。",
                       "cx_offer_person_class")
                return
        if not periods:
            return
        rule = policy.rules.repeat_bill_contact
        earlier = earlier_contacts_about(session, state.account_no, periods, state.conversation_id,
                                         now - timedelta(days=rule.window_days))
        if len(earlier) >= rule.earlier_contacts_min:
            state.slots["cx_repeat_of"] = earlier[-5:]
            _offer(turn, rule.message, "cx_offer_person_repeat")
