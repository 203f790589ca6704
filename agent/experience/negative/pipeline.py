"""Negative experiences in the local turn: detect, apologise at once, record, offer a remedy.

Two touch points in the local brain's graph node (`agent.graph`): `before_turn` runs before the
brain and may answer the turn itself (the customer's yes/no to an offered remedy; an angry or
distressed message, answered with an apology and the offer of a person instead of one more
self-service step); `after_turn` looks at what the turn did (a CSAT of 1–2, a complaint opened,
an identity lock-out) and, once the customer is verified, at the records (a repeat contact on the
same topic within the FCR window, an earlier hand-off nobody took). Every trigger opens or updates
the conversation's 负面体验 record with its cause (`records.record_trigger`); the apology is said
in the same reply; the remedy of `data/remedies.yaml` is offered in the first reply that asks the
customer nothing else, and the answer of the next turn is recorded.

Cost: the classifier is ~15 µs; the database is touched only when something triggers, plus one
records check per conversation once the customer is verified.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from agent.experience.negative.emotion import detect_emotion
from agent.experience.negative.models import RemedyStatus
from agent.experience.negative.policy import remedy_policy
from agent.experience.negative.records import (
    Trigger, earlier_contact, record_trigger, set_remedy, unanswered_handoffs)
from agent.flows import FLOW_FREE_TEXT_SLOTS, HANDOFF_BY_INTENT, TASKS
from agent.flows.base import Handoff
from agent.flows.handoff import hand_off
from agent.replies import render
from agent.turn import Parsed, Turn

logger = logging.getLogger(__name__)

OFFER_SLOT = "cx_offer"  # the remedy offered, awaiting the customer's yes/no
CAUSES_SLOT = "cx_causes"  # causes already handled in this conversation (each apologised for once)
DUE_SLOT = "cx_offer_due"  # a cause whose remedy waits for a reply that asks nothing else
CHECKED_SLOT = "cx_records_checked"  # the records checks ran for this conversation
LOW_CSAT = 2  # a rating of 1 or 2 (不满意 / 非常不满意)
SHORT_ANSWER_CHARS = 4  # a message this short, answering what we asked, is an answer, not a tone
ESCALATION = Handoff("transfer_to_human", "complaint_escalation")
_SELF_SERVICE_LOOPS = frozenset({"clarify"})
# Dialogue acts the engine reads as answers or repairs (「算了不投诉了」「不对是四月」): not judged for tone.
_DIALOGUE_ACTS = frozenset({"cancel", "deny", "affirm", "correction", "goodbye_thanks", "rate_satisfaction"})  # replies that would go round again instead of offering a person

Understand = Callable[[str, date], Parsed]


def before_turn(turn: Turn, understand: Understand) -> bool:
    """Answer the turn here when it is the reply to an offered remedy or a negative message.
    Returns True when the brain should not run."""
    state = turn.state
    offer = state.slots.get(OFFER_SLOT)
    if offer is not None:
        answer = _yes_no(turn) if state.awaiting == "remedy" else None
        state.slots.pop(OFFER_SLOT, None)
        if answer is not None:
            original = _answer(turn, offer, answer)
            if original is None:
                return True
            # Declined: serve what the customer first asked for, as if the offer had not come between.
            turn.text, turn.parsed, state.awaiting = original, understand(original, turn.today), None
            return False
        # Neither yes nor no: the customer moved on; the record keeps the offer unanswered.
    if state.handed_off and "handoff_unanswered" not in _causes(turn):
        waiting = _read(turn, lambda s, now: unanswered_handoffs(s, now, conversation_id=state.conversation_id))
        if waiting:
            minutes = int((turn.toolbox.ctx.now() - waiting[0].created_at).total_seconds() // 60)
            _trigger(turn, Trigger("handoff_unanswered", f"转接单{waiting[0].no}已等待{minutes}分钟"))
            _offer(turn, "handoff_unanswered")
            return True
    if "negative_emotion" in _causes(turn) or _short_answer(turn) or _DIALOGUE_ACTS & set(turn.parsed.intents):
        return False
    score = detect_emotion(turn.text)
    if not score.negative:
        return False
    _trigger(turn, Trigger("negative_emotion", f"{score.kind} {score.probability:.2f}：{turn.text}"))
    if any(i in HANDOFF_BY_INTENT or i == "complaint" for i in turn.parsed.intents):
        return False  # a person or a complaint is what they asked for: the brain serves it
    _offer(turn, "negative_emotion", original=turn.text)
    return True


def answers_before_any_brain(turn: Turn) -> bool:
    """Whether this turn is the customer's answer to an offered remedy, or a message whose anger or
    distress must be met with an apology and a person: the engine then routes an LLM-brain turn to
    the local node, where `before_turn` answers it (the model does not improvise either)."""
    if turn.state.slots.get(OFFER_SLOT) is not None or turn.state.slots.get(DUE_SLOT):
        return True  # a remedy offered, or due since an LLM turn opened a complaint
    if "negative_emotion" in _causes(turn) or _short_answer(turn) or _DIALOGUE_ACTS & set(turn.parsed.intents):
        return False  # the same exclusions as `before_turn`
    return detect_emotion(turn.text).negative


def after_turn(turn: Turn) -> None:
    """Triggers in what the turn did and in the records; the apology now, the remedy when free."""
    state = turn.state
    causes = _causes(turn)
    if turn.csat is not None and _score(turn.csat) <= LOW_CSAT and "low_csat" not in causes:
        _trigger(turn, Trigger("low_csat", f"满意度{_score(turn.csat)}分"))
        turn.parts = [part for part in turn.parts if part.template != "csat_thanks"]
        state.closed = False  # open until the customer answers the remedy
        if state.slots.get(OFFER_SLOT) is None:
            _offer(turn, "low_csat", close=True)
    for trigger in _tool_triggers(turn, causes):
        _trigger(turn, trigger, first=True)
    if state.verified and state.account_no and not state.slots.get(CHECKED_SLOT):
        _check_records(turn)
    if (_causes(turn) and state.slots.get(OFFER_SLOT) is None and not state.slots.get(DUE_SLOT)
            and not (turn.handoff or state.handed_off)  # a person is on the way already
            and turn.parts and turn.parts[-1].template in _SELF_SERVICE_LOOPS):
        turn.parts.pop()  # no more self-service rounds after a negative experience: offer a person
        state.slots[DUE_SLOT] = "negative_emotion"
    due = state.slots.get(DUE_SLOT)
    if due and state.slots.get(OFFER_SLOT) is None and turn.awaiting_out is None:
        state.slots.pop(DUE_SLOT, None)
        _offer(turn, due, remedy="priority_handling" if due == "negative_emotion" else None)


def _tool_triggers(turn: Turn, causes: list[str]) -> list[Trigger]:
    """Negative experiences in what the turn's tools did: a complaint opened, an identity lock-out."""
    found = []
    complaint = next((c for c in turn.toolbox.calls if c.tool == "intake_complaint"
                      and getattr(c.result, "status", None) == "opened"), None)
    if complaint is not None and "complaint" not in causes:
        category = str((complaint.arguments or {}).get("category") or "") or None
        found.append(Trigger("complaint", f"投诉{getattr(complaint.result, 'ticket_no', '')}",
                             complaint_category=category))
    locked = any(c.tool == "verify_identity" and getattr(c.result, "status", None) == "locked"
                 for c in turn.toolbox.calls)
    if locked and "identity_locked" not in causes:
        found.append(Trigger("identity_locked", "身份核实多次失败被锁定"))
    return found


def after_llm_turn(turn: Turn) -> None:
    """The same tool triggers on an LLM-brain turn: recorded, and the apology added after the
    model's (already guarded, perhaps already streamed) words; the remedy is then offered by the
    next turn, which `answers_before_any_brain` sends to the local node."""
    for trigger in _tool_triggers(turn, _causes(turn)):
        _trigger(turn, trigger)
        apology = render(f"negative_apology_{trigger.cause}").text
        turn.parts = [part for part in turn.parts if part.text != apology]  # the reply is reply_text here
        turn.reply_text = f"{turn.reply_text or ''}{apology}"
        if turn.emit is not None:
            turn.emit(apology)


def note_low_rating(sessions: sessionmaker[Session], conversation_id: str, channel: str,
                    account_no: str | None, score: int, now: datetime) -> None:
    """A CSAT of 1–2 from a channel's rating widget (`Agent.rate`): no turn to answer in, so the
    record's remedy is `pending`, for staff to offer."""
    if score > LOW_CSAT:
        return
    try:
        with sessions.begin() as session:
            row = record_trigger(session, conversation_id=conversation_id, channel=channel, account_no=account_no,
                                 trigger=Trigger("low_csat", f"满意度{score}分（评价组件）"), now=now)
            if row.remedy_status is None:
                set_remedy(session, conversation_id, row.remedy or "call_back", RemedyStatus.PENDING, now)
    except Exception:  # the rating itself is stored; a failed record must not lose it
        logger.exception("negative-experience record failed for conversation %s", conversation_id)


# ---------------------------------------------------------------- steps


def _check_records(turn: Turn) -> None:
    """Once per conversation, when verified on a task: a repeat contact, an earlier unanswered hand-off."""
    state = turn.state
    topic = next((i for i in turn.parsed.intents if i in TASKS), None) or state.flow or state.slots.get("last_flow")
    if not topic:
        return
    state.slots[CHECKED_SLOT] = True
    account, conversation = str(state.account_no), state.conversation_id

    def look(session: Session, now: datetime) -> tuple[Any, Any]:
        earlier = earlier_contact(session, account, topic, conversation, now)
        waiting = [h for h in unanswered_handoffs(session, now, account_no=account)
                   if h.conversation_id != conversation]
        return (earlier.started_at if earlier is not None else None), (waiting[0].no if waiting else None)

    found = _read(turn, look)
    if not found:
        return
    earlier_at, handoff_no = found
    if handoff_no is not None:
        _trigger(turn, Trigger("handoff_unanswered", f"此前转接单{handoff_no}无人接待"), first=True)
    if earlier_at is not None:
        _trigger(turn, Trigger("repeat_contact", f"{topic}：上次来电{earlier_at:%Y-%m-%d %H:%M}"), first=True)


def _trigger(turn: Turn, trigger: Trigger, first: bool = False) -> None:
    """Record the cause, apologise in this reply (`first`: before what the turn said), and queue
    its remedy for the first reply that asks nothing else."""
    state = turn.state
    state.slots[CAUSES_SLOT] = [*_causes(turn), trigger.cause]
    if trigger.complaint_category:
        state.slots["cx_complaint_category"] = trigger.complaint_category
    _write(turn, lambda s, now: record_trigger(s, conversation_id=state.conversation_id, channel=state.channel,
                                               account_no=state.account_no if state.verified else None,
                                               trigger=trigger, now=now))
    apology = render(f"negative_apology_{trigger.cause}")
    if first:
        turn.parts.insert(0, apology)
    else:
        turn.say(apology)
    if state.slots.get(OFFER_SLOT) is None and not state.slots.get(DUE_SLOT):
        state.slots[DUE_SLOT] = trigger.cause


def _offer(turn: Turn, cause: str, *, remedy: str | None = None, close: bool = False,
           original: str | None = None) -> None:
    """Offer the cause's remedy and wait for the yes/no; a person already on the way is the
    priority handling itself, given without asking."""
    state, policy = turn.state, remedy_policy()
    state.slots.pop(DUE_SLOT, None)
    remedy = remedy or policy.remedy_for(cause, state.slots.get("cx_complaint_category"))
    if remedy == "priority_handling" and (turn.handoff or state.handed_off):
        _write(turn, lambda s, now: set_remedy(s, state.conversation_id, remedy, RemedyStatus.APPLIED, now))
        if not turn.parts:
            turn.say(render("ask_more"))  # never an empty reply
        return
    hours = policy.remedies[remedy].within_hours
    turn.say(render(f"remedy_offer_{remedy}", **({"hours": hours} if hours else {})))
    _evidence(turn, remedy)
    state.slots[OFFER_SLOT] = {"cause": cause, "remedy": remedy, "close": close, "original": original}
    _write(turn, lambda s, now: set_remedy(s, state.conversation_id, remedy, RemedyStatus.OFFERED, now))


def _answer(turn: Turn, offer: dict[str, Any], accepted: bool) -> str | None:
    """Carry out (or not) the offered remedy and record the answer. Returns the message to serve
    next when the customer declined an offer that came instead of an answer."""
    state, remedy = turn.state, str(offer["remedy"])
    status = RemedyStatus.ACCEPTED if accepted else RemedyStatus.DECLINED
    if accepted and remedy == "priority_handling":
        summary = (f"负面体验（{remedy_policy().cause_label(str(offer['cause']))}），客户同意优先转人工。"
                   f"{'已核实户号' + str(state.account_no) if state.verified else '身份未核实'}。"
                   f"客户原话：{offer.get('original') or turn.text}")[:2000]
        hand_off(turn, ESCALATION, summary)
    elif accepted:
        hours = remedy_policy().remedies[remedy].within_hours
        turn.say(render(f"remedy_accepted_{remedy}", hours=hours))
        _evidence(turn, remedy)
        turn.actions.append(f"remedy_{remedy}")
    else:
        turn.say(render("remedy_declined"))
    _write(turn, lambda s, now: set_remedy(s, state.conversation_id, remedy, status, now))
    if offer.get("close"):
        state.closed = True
        turn.say(render("goodbye"))
        return None
    if not accepted and offer.get("original"):
        return str(offer["original"])
    if not accepted:
        turn.say(render("ask_more"))
    return None


# ---------------------------------------------------------------- helpers


def _causes(turn: Turn) -> list[str]:
    return list(turn.state.slots.get(CAUSES_SLOT) or [])


def _score(csat: int | str) -> int:
    try:
        return int(csat)
    except (TypeError, ValueError):
        return 5


def _yes_no(turn: Turn) -> bool | None:
    from agent.local_brain import _AFFIRM, _DENY  # the engine's own reading of 是 / 不用

    if _DENY.match(turn.text) or "deny" in turn.parsed.intents or "不需要" in turn.text:
        return False
    if _AFFIRM.match(turn.text) or "affirm" in turn.parsed.intents:
        return True
    return None


def _short_answer(turn: Turn) -> bool:
    """An answer to what the last reply asked, not a tone to judge: a short one (「八零零零」), a
    complaint's or dispute's description (the complaint is its own trigger), or a read-back's answer."""
    state = turn.state
    if state.pending is not None or state.flow == "complaint" or state.awaiting in FLOW_FREE_TEXT_SLOTS:
        return True
    return state.awaiting is not None and len(turn.text.strip()) <= SHORT_ANSWER_CHARS


def _evidence(turn: Turn, remedy: str) -> None:
    """The promised hours come from the remedies policy: give the guard the policy's sentence."""
    spec = remedy_policy().remedies[remedy]
    if spec.within_hours:
        turn.passages.append(f"{spec.label}：{spec.within_hours}小时内（remedies.yaml）")


def _write(turn: Turn, step: Callable[[Session, datetime], Any]) -> None:
    """Queue a record write for the turn record's transaction (`Agent._record`): no commit of its own."""
    now = turn.toolbox.ctx.now()
    turn.record_steps.append(lambda session: step(session, now))


def run_record_steps(session: Session, steps: list[Callable[[Session], Any]]) -> None:
    """The turn's queued record writes, each in a savepoint: a failed one is logged and rolled back
    alone, never the customer's turn or its record.

    A lost connection is not such a failure: the savepoint and the whole transaction are gone with
    it, so it is raised (the turn is then a 503 that loses nothing). Swallowed, it surfaced only at
    COMMIT as PendingRollbackError, a 500 the client does not resend.
    """
    for step in steps:
        try:
            with session.begin_nested():
                step(session)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            logger.exception("negative-experience record failed")
        except Exception:
            logger.exception("negative-experience record failed")
    steps.clear()


def _read(turn: Turn, step: Callable[[Session, datetime], Any]) -> Any:
    ctx = turn.toolbox.ctx
    try:
        with ctx.session_factory() as session:
            return step(session, ctx.now())
    except Exception:
        logger.exception("negative-experience check failed in conversation %s", turn.state.conversation_id)
        return None
