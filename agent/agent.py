"""`Agent.handle`: the one Python API every channel calls.

A turn runs under the conversation's lock; a message id seen before returns the stored reply
(channels resend), and one whose reply was lost after its turn was recorded (a connection cut at
COMMIT, a replica killed) runs again but is recorded once and answered with the recorded reply
(agent.records, "A message is recorded once"). The conversation state lives in the state store
(memory or Redis), the verified principal in the tools layer's server-side session, and every
turn is recorded.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.assist import Suggestion, suggest_replies
from agent.experience.negative.pipeline import note_low_rating, run_record_steps
from agent.experience.classes import standing_reader
from agent.experience.policy import load_policy as load_cx_policy
from agent.experience.service import apply_service_rules
from agent.flows import TASKS
from agent.graph import build_graph
from agent.grounding import mask_personal_numbers
from agent.llm_brain import LLMBrain
from agent.local_brain import LocalBrain
from agent.models import Outcome
from agent.records import CsatError, RecordedTurn, Recorder, TurnAlreadyRecorded, parse_csat
from agent.replies import render
from agent.streaming import Relay, StreamEvent
from agent.state import ConversationState, StateStore, state_store_from_env
from agent.toolbox import ToolBox
from agent.turn import Parsed, Turn
from billing_core.db.engine import session_factory, utc_now
from tools.audit import flush_audit, insert_audit_rows
from tools.channels import UnknownChannel, channel_spec
from tools.context import Principal, ToolContext
from tools.transfer_to_human import held_by_staff

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
HISTORY_KEEP = 30


@dataclass
class Reply:
    """What a channel shows: the text, its sources, what it waits for, what was done."""

    conversation_id: str
    text: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    awaiting: str | None = None
    actions: list[str] = field(default_factory=list)
    handoff: bool = False
    brain: str = "local"
    tickets: list[str] = field(default_factory=list)
    outcome: str | None = None
    closed: bool = False
    grounded: bool = True
    message_id: str | None = None
    latency_ms: int = 0
    # A person holds the conversation (staff took it over): no turn ran, `text` is empty, and the
    # channel tells the customer so and records the message (`Agent.record_held_turn`).
    held_by_staff: bool = False
    choices: list[str] = field(default_factory=list)  # quick replies: web buttons, numbered on WeChat/hotline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        return cls(**data)


class AgentInputError(ValueError):
    """Bad input to `Agent.handle`; the message names the field."""


class ConversationNotFound(AgentInputError):
    """No conversation of this channel has that id. A conversation belongs to the channel that
    started it: another channel naming its id gets this, exactly as for an id never used."""


def nlu_understand(text: str, today: date) -> Parsed:
    """Intents and entities from `agent.nlu.understand`, in the engine's terms."""
    from agent.nlu import understand

    result = understand(text, today)
    return parsed_from_understanding(result)


def parsed_from_understanding(result: Any) -> Parsed:
    from agent.nlu import intent_catalogue

    catalogue = intent_catalogue()
    intents: list[str] = []
    for item in getattr(result, "intents", None) or []:
        name = item if isinstance(item, str) else getattr(item, "name", None) or getattr(item, "intent", None)
        if name and name != "unclear":
            # An intent without a flow yet is served as the one intents.yaml names (`served_as`).
            spec = catalogue.get(str(name))
            served = spec.served_as if spec is not None and spec.served_as else str(name)
            if served not in intents:
                intents.append(served)
    if not intents:
        top = getattr(result, "intent", None)
        if isinstance(top, str) and top != "unclear":
            intents.append(top)
    entities = entities_for_slots(getattr(result, "entities", None) or [])
    confidence = float(getattr(result, "confidence", 1.0) or 1.0)
    parsed = Parsed(intents=intents, entities=entities, confidence=confidence)
    if hasattr(result, "candidates"):  # `agent.nlu.Understanding`: what a clarifying question offers
        served_name = {n: (s.served_as or n) for n, s in catalogue.items()}
        for score in result.candidates(4):
            name = served_name.get(score.intent, score.intent)
            if name != "unclear" and all(name != c for c, _ in parsed.candidates):
                parsed.candidates.append((name, float(score.score)))
        parsed.out_of_scope_sure = result.out_of_scope_is_sure()
        sure: set[str] = set()
        for clause in result.clauses:
            name = served_name.get(clause.intent, clause.intent)
            parsed.clause_of.setdefault(name, clause.text)
            if clause.is_sure:
                sure.add(name)
        parsed.unsure = {name for name in intents if name not in sure}
    return parsed


def entities_for_slots(found: Any) -> dict[str, Any]:
    """NLU entities (typed objects from `agent.nlu.entities`) as the flows' slot values.

    The first entity of each kind wins, as the customer usually says the main one first — except
    that a month named as such (「5月」) wins over a relative one (「这个月突然变成四百八十度」), which
    is as often the time of the story as the bill meant.
    """
    if isinstance(found, dict):
        return dict(found)
    slots: dict[str, Any] = {}
    months = [e for e in found if type(e).__name__ == "BillingMonth"]
    named = [m for m in months if not getattr(m, "relative", False)]
    if named:
        found = [e for e in found if type(e).__name__ != "BillingMonth" or e is named[0]]
    for entity in found:
        kind = type(entity).__name__
        if kind == "AccountNumber":
            slots.setdefault("account_no", entity.digits)
        elif kind == "DigitTail":
            slots.setdefault("last4", entity.digits)
        elif kind == "BillingMonth":
            slots.setdefault("period", f"{entity.year:04d}-{entity.month:02d}")
        elif kind == "RecentBills":
            slots.setdefault("latest", entity.count)
        elif kind == "PhoneNumber":
            slots.setdefault("phone", entity.digits)
        elif kind == "Amount":
            slots.setdefault("amount", entity.value)
        elif kind == "SatisfactionRating":
            slots.setdefault("csat", entity.score if entity.score is not None else str(entity.level))
        elif kind == "DigitSequence":
            slots.setdefault("digits", entity.digits)
    return slots


class Agent:
    """The dialogue engine with its state store, database and brains."""

    def __init__(self, sessions: sessionmaker[Session] | None = None, store: StateStore | None = None,
                 brain: str | None = None, llm: LLMBrain | None = None,
                 knowledge: Callable[[], Any] | None = None,
                 understand: Callable[[str, date], Parsed] = nlu_understand,
                 clock: Callable[[], datetime] = utc_now, record: bool = True) -> None:
        self.sessions = sessions or session_factory()
        self.store = store or state_store_from_env()
        self.llm = llm if llm is not None else (LLMBrain.from_env() if brain in ("llm", None) else None)
        self.brain = brain or ("llm" if self.llm is not None else "local")
        if self.brain not in ("local", "llm"):
            raise AgentInputError(f"brain: must be 'local' or 'llm', not {self.brain!r}")
        self.knowledge = knowledge if knowledge is not None else _default_knowledge
        self.clock = clock
        self.recorder = Recorder(self.sessions) if record else None
        self.graph = build_graph(understand, LocalBrain(), self.llm)
        # Differentiated service (agent/experience/classification.yaml): loaded now, so a malformed
        # policy stops the agent at start, naming the file and field, not in a customer's turn.
        self.cx_policy = load_cx_policy()
        self.service_level = standing_reader(self.cx_policy)

    def handle(self, conversation_id: str, channel: str, text: str, message_id: str | None = None,
               identity: dict[str, str] | None = None, *,
               on_event: Callable[[StreamEvent], None] | None = None, source: str | None = None) -> Reply:
        """Answer one customer message. `identity` is what the channel vouches for, under its spec's
        `identity_key` (`tools.channels`: `{"openid": …}` on WeChat, `{"caller": …}` on the hotline).

        While a person holds the conversation, no turn runs: the reply says `held_by_staff`, decided
        on the state this turn loads under the conversation's lock anyway (the hand-off row is asked
        only when that state says it was handed off).

        `source`: where the message came from when that is no identity the channel vouches for (the
        web page's client address): identity checks are also counted per source, so one address
        trying account after account is locked (`tools.verify_identity`). Never a proof.

        `on_event`: a streaming channel's callback, given each guarded sentence of an LLM reply as
        it is ready, a `Retract` if what went out is not the final reply, and the `Final` reply
        (see `agent.streaming`). Without it the turn is exactly the same, only not streamed.
        """
        if on_event is None:
            return self._handle(conversation_id, channel, text, message_id, identity, None, source)
        relay = Relay(on_event)
        reply = self._handle(conversation_id, channel, text, message_id, identity, relay.sentence, source)
        relay.finish(reply)
        return reply

    def stream(self, conversation_id: str, channel: str, text: str, message_id: str | None = None,
               identity: dict[str, str] | None = None, source: str | None = None) -> Iterator[StreamEvent]:
        """`handle` as events: sentences as they pass the guard, maybe a `Retract`, then `Final`.

        The turn runs in a thread of its own (the caller reads events as they come); bad input
        and other errors of `handle` are raised from the iterator.
        """
        events: queue.Queue[StreamEvent | BaseException | None] = queue.Queue()

        def run() -> None:
            try:
                self.handle(conversation_id, channel, text, message_id, identity, on_event=events.put, source=source)
            except BaseException as exc:  # handed to the reader, raised there
                events.put(exc)
            finally:
                events.put(None)

        worker = threading.Thread(target=run, name=f"turn-{conversation_id}", daemon=True)
        worker.start()
        while (event := events.get()) is not None:
            if isinstance(event, BaseException):
                raise event
            yield event
        worker.join()

    def _handle(self, conversation_id: str, channel: str, text: str, message_id: str | None,
                identity: dict[str, str] | None, emit: Callable[[str], None] | None,
                source: str | None = None) -> Reply:
        conversation_id = _require(conversation_id, "conversation_id", 128)
        try:
            channel_spec(channel)
        except UnknownChannel as exc:
            raise AgentInputError(str(exc)) from exc
        if not isinstance(text, str) or not text.strip():
            raise AgentInputError("text: message is empty")
        if len(text) > MAX_MESSAGE_CHARS:
            raise AgentInputError(f"text: message longer than {MAX_MESSAGE_CHARS} characters")
        if message_id is not None:
            message_id = _require(message_id, "message_id", 128)
        with self.store.lock(conversation_id):
            if message_id is not None:
                stored = self.store.stored_reply(conversation_id, message_id)
                if stored is not None:
                    return Reply.from_dict(stored)
            reply = self._turn(conversation_id, channel, text.strip(), message_id, identity or {}, emit, source)
            if message_id is not None and reply.message_id is not None:
                self.store.store_reply(conversation_id, message_id, reply.to_dict())
            return reply

    def _turn(self, conversation_id: str, channel: str, text: str, message_id: str | None,
              identity: dict[str, str], emit: Callable[[str], None] | None = None,
              source: str | None = None) -> Reply:
        started = time.perf_counter()
        state = self.store.load(conversation_id)
        if state is not None and state.channel != channel:
            raise ConversationNotFound(f"conversation_id: no {channel} conversation {conversation_id!r}")
        if state is not None and state.handed_off and self._held(conversation_id):
            return Reply(conversation_id=conversation_id, text="", brain="staff", held_by_staff=True,
                         awaiting=state.awaiting, latency_ms=int((time.perf_counter() - started) * 1000))
        if state is None or state.closed:
            state = ConversationState(conversation_id=conversation_id if state is None else
                                      f"{conversation_id}", channel=channel)
        state.channel_identity.update({k: str(v) for k, v in identity.items() if v})
        identity_key = channel_spec(channel).identity_key
        channel_identity = state.channel_identity.get(identity_key) if identity_key else None
        ctx = ToolContext(conversation_id=conversation_id, channel=channel, session_factory=self.sessions,
                          channel_identity=channel_identity, clock=self.clock, source=source,
                          knowledge=self.knowledge, pending_audit=[], service_level=self.service_level,
                          message_id=message_id)
        if state.verified:
            # The state store is server-side like `verified_sessions`, so the principal kept with the
            # state is trusted; expiry is still checked (ctx.verified()). Without it, ask the database.
            if state.principal is not None:
                ctx.principal = Principal.model_validate(state.principal)
            if ctx.verified() is None and ctx.restore_principal() is None:
                state.verified = False  # the verification expired or belongs to another channel
        toolbox = ToolBox(ctx=ctx)
        turn = Turn(state=state, text=text, today=ctx.today(), toolbox=toolbox, brain=self.brain, emit=emit)
        try:
            self.graph.invoke({"turn": turn})
        except Exception:  # a bug or a database outage: apologise, keep the stored state as it was
            logger.exception("turn failed in conversation %s", conversation_id)
            _flush_audit_quietly(ctx)  # the calls made before the failure stay on record
            return Reply(conversation_id=conversation_id, text=render("tool_error").text, brain=turn.brain,
                         grounded=True, message_id=None, awaiting=state.awaiting,
                         latency_ms=int((time.perf_counter() - started) * 1000))
        try:
            apply_service_rules(turn, self.sessions, ctx.now(), self.cx_policy)
        except Exception:  # an offer the class would add is not worth failing the answered turn
            logger.exception("service rules failed in conversation %s", conversation_id)

        principal = ctx.verified()
        state.principal = principal.model_dump(mode="json") if principal is not None else None
        reply_text = turn.text_out
        awaiting = turn.awaiting_out
        state.awaiting = awaiting if not state.closed else None
        latency_ms = int((time.perf_counter() - started) * 1000)
        if self.recorder is not None:
            try:
                recorded = self._record(state, turn, text, reply_text, message_id, latency_ms, ctx)
            except Exception:
                _flush_audit_quietly(ctx)  # the turn record failed; its tool calls still get audited
                raise
            if recorded is not None:
                # An earlier attempt of this message recorded the turn and its client never got the
                # answer: answer with what was recorded, keep the state recomputed now.
                logger.info("message %s of conversation %s was recorded by an earlier attempt (turn %s): "
                            "answered with its reply", message_id, conversation_id, recorded.turn_id)
                reply_text, turn.brain, turn.grounded = recorded.reply_text, recorded.brain, recorded.grounded
                turn.citations, turn.tickets = recorded.citations, recorded.tickets
                if recorded.tickets:
                    turn.outcome = Outcome.TICKET
        else:
            flush_audit(ctx)
            if turn.record_steps:
                with self.sessions.begin() as session:
                    run_record_steps(session, turn.record_steps)
        state.turns += 1
        state.history.append({"role": "user", "text": text})
        state.history.append({"role": "assistant", "text": reply_text})
        state.history = state.history[-HISTORY_KEEP:]
        if toolbox.calls:
            state.last_tool_results = [call.as_dict() for call in toolbox.calls][-6:]
        state.last_citations = turn.citations
        state.tickets.extend(turn.tickets)
        state.handed_off = state.handed_off or turn.handoff
        if turn.outcome is not None:
            state.outcome = turn.outcome.value
        self.store.save(state)
        return Reply(conversation_id=conversation_id, text=reply_text, citations=turn.citations,
                     awaiting=state.awaiting, actions=turn.actions, handoff=turn.handoff, brain=turn.brain,
                     tickets=turn.tickets, outcome=state.outcome, closed=state.closed, grounded=turn.grounded,
                     message_id=message_id, latency_ms=latency_ms, choices=list(turn.choices))

    def _record(self, state: ConversationState, turn: Turn, text: str, reply_text: str,
                message_id: str | None, latency_ms: int, ctx: ToolContext) -> RecordedTurn | None:
        """The turn, its tool calls' audit rows, CSAT and the conversation's end: one transaction.

        Returns the recorded turn when an earlier attempt of `message_id` recorded it: then this
        attempt's transaction is rolled back whole and its audit rows are dropped (agent.records).
        """
        assert self.recorder is not None
        csat: tuple[int, str] | None = None
        csat_error: CsatError | None = None
        if turn.csat is not None:
            try:
                csat = parse_csat(turn.csat)
            except CsatError as exc:  # raised after the turn itself is safely recorded, as before
                csat_error = exc
        topic = next((i for i in turn.parsed.intents if i in TASKS), None)
        audit_rows = list(ctx.pending_audit or [])
        try:
            with self.sessions.begin() as session:
                record_id = state.record_id
                if record_id is None:
                    record_id = self.recorder.start_in(session, state.conversation_id, state.channel,
                                                       turn.brain, account_no=state.account_no)
                self.recorder.record_turn_in(
                    session, record_id, user_text=mask_personal_numbers(text), reply_text=reply_text,
                    brain=turn.brain, intents=turn.parsed.intents,
                    tool_calls=[call.as_dict() for call in turn.toolbox.calls], citations=turn.citations,
                    latency_ms=latency_ms, message_id=message_id, grounded=turn.grounded,
                    violations=turn.violations, account_no=state.account_no if state.verified else None,
                    topic=topic, tickets=turn.tickets, outcome=turn.outcome)
                insert_audit_rows(self.sessions, audit_rows, session=session)
                run_record_steps(session, turn.record_steps)
                if csat is not None:
                    self.recorder.store_csat_in(session, record_id, *csat)
                if state.closed:
                    self.recorder.finish_in(session, record_id)
        except TurnAlreadyRecorded as already:  # rolled back by the `begin()` block
            if ctx.pending_audit is not None:
                ctx.pending_audit.clear()  # the recorded attempt's audit rows stand for this turn
            state.record_id = already.recorded.record_id
            return already.recorded
        if ctx.pending_audit is not None:
            ctx.pending_audit.clear()
        state.record_id = record_id  # only once committed, so a rolled-back id is never kept
        if csat_error is not None:
            raise csat_error
        return None

    def end(self, conversation_id: str) -> None:
        """The channel closed the conversation (the customer left): settle its record."""
        with self.store.lock(conversation_id):
            state = self.store.load(conversation_id)
            if state is None:
                return
            state.closed = True
            if self.recorder is not None and state.record_id is not None:
                self.recorder.finish(state.record_id)
            self.store.save(state)

    def rate(self, conversation_id: str, answer: str | int, channel: str | None = None) -> int:
        """A CSAT answer from a channel widget (满意/一般/不满意 or 1–5); returns the score.
        With `channel`, only that channel's conversation can be rated."""
        with self.store.lock(conversation_id):
            state = self.store.load(conversation_id)
            if state is None or state.record_id is None or self.recorder is None or (
                    channel is not None and state.channel != channel):
                raise ConversationNotFound(f"conversation_id: no recorded conversation {conversation_id!r}")
            score = self.recorder.record_csat(state.record_id, answer)
            note_low_rating(self.sessions, conversation_id, state.channel, state.account_no, score, self.clock())
            return score

    def state(self, conversation_id: str) -> ConversationState | None:
        return self.store.load(conversation_id)

    def _held(self, conversation_id: str) -> bool:
        with self.sessions() as session:
            return held_by_staff(session, conversation_id)

    def held_by_staff(self, conversation_id: str) -> bool:
        """True while a person holds the conversation. A take-over accepts the hand-off request and
        sets the state's `handed_off` under the conversation's lock, so a state without it is not
        held and the database is not asked."""
        state = self.store.load(conversation_id)
        return state is not None and state.handed_off and self._held(conversation_id)

    def record_held_turn(self, conversation_id: str, user_text: str = "", reply_text: str = "",
                         channel: str | None = None) -> None:
        """A message while a person holds the conversation — the customer's (after `handle` said
        `held_by_staff`) or the staff's reply: kept in the record and the dialogue history."""
        with self.store.lock(conversation_id):
            state = self.store.load(conversation_id)
            if state is None or state.record_id is None or (channel is not None and state.channel != channel):
                raise ConversationNotFound(f"conversation_id: no recorded conversation {conversation_id!r}")
            if self.recorder is not None:
                self.recorder.record_turn(state.record_id, user_text=user_text,
                                          reply_text=reply_text, brain="staff", intents=[], tool_calls=[],
                                          citations=[], latency_ms=0)
            if user_text:
                state.history.append({"role": "user", "text": user_text})
            if reply_text:
                state.history.append({"role": "assistant", "text": reply_text})
            self.store.save(state)

    def suggest(self, conversation_id: str, limit: int = 3) -> list[Suggestion]:
        """Top next replies for a human agent, each with the tool results and passages behind it."""
        state = self.store.load(conversation_id)
        if state is None:
            raise AgentInputError(f"conversation_id: no conversation {conversation_id!r}")
        ctx = ToolContext(conversation_id=conversation_id, channel=state.channel,
                          session_factory=self.sessions, clock=self.clock, knowledge=self.knowledge)
        if state.verified:
            ctx.restore_principal()
        return suggest_replies(state, ctx, limit)


def _require(value: Any, name: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AgentInputError(f"{name}: must be a non-empty string")
    if len(value) > limit:
        raise AgentInputError(f"{name}: longer than {limit} characters")
    return value


def _flush_audit_quietly(ctx: ToolContext) -> None:
    """Write the turn's collected audit rows on their own; a failure here is logged, not raised."""
    try:
        flush_audit(ctx)
    except Exception:
        logger.exception("audit write failed in conversation %s", ctx.conversation_id)


def _default_knowledge() -> Any:
    from knowledge_base.service import default_retriever

    return default_retriever()


__all__ = ["Agent", "AgentInputError", "ConversationNotFound", "Reply", "Outcome"]
