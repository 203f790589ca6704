"""Recording conversations and turns, CSAT answers, and first-contact resolution from the records.

First-contact resolution follows T/CI 1281 table 1 (「客户服务需求在第一次客户服务接触中完全解决的
占比」): a customer's need counts once, at its first conversation; it is resolved at first contact
when that conversation ended `resolved` and the same customer did not come back about the same
topic within the window (7 days by default). A conversation that is itself such a repeat contact
is not a new need, so it is not counted again.

A message is recorded once. Channels resend a message with the same id when its answer was lost
(chat.js after a 5xx, WeChat's retries), and the answer can be lost after the turn committed: a
database connection cut at COMMIT, a replica killed before it saved the state or the reply. The
turn rows carry a unique key on (conversation record, message id), and `record_turn_in` inserts
with ON CONFLICT DO NOTHING; when the message is recorded already it raises `TurnAlreadyRecorded`
with the recorded turn, and the caller rolls back that attempt's whole transaction: no second turn
row, no second set of tool-call audit rows, no second CSAT, record step or ticket in the summary.
The agent then answers the resend with the recorded reply and keeps the state it recomputed. The
write tools the rerun calls again open no twin: a dispute for a bill with one open, a complaint of
a category this conversation already filed, a hand-off while one waits each give the open one
back (tests/agent/test_turn_once.py resends a dispute confirmation). Messages without an id (staff
messages, NULL) are recorded every time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from agent.models import ConversationRecord, Outcome, TurnRecord

FCR_WINDOW_DAYS = 7  # T/CI 1281 practice; POWERDESK_FCR_WINDOW_DAYS overrides it


def fcr_window_days() -> int:
    """The repeat-contact window in days (`POWERDESK_FCR_WINDOW_DAYS`, default 7)."""
    raw = os.environ.get("POWERDESK_FCR_WINDOW_DAYS", "")
    if not raw:
        return FCR_WINDOW_DAYS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"POWERDESK_FCR_WINDOW_DAYS: a whole number of days >= 1, not {raw!r}")
    return int(raw)

# One 1–5 scale on every channel (the web widget's buttons, channels.web_chat.CSAT_LABELS, the
# agent's prompt in templates.yaml): 5 非常满意, 4 满意, 3 一般, 2 不满意, 1 非常不满意.
CSAT_LABELS: dict[str, int] = {"非常满意": 5, "很满意": 5, "满意": 4, "一般": 3, "不满意": 2, "非常不满意": 1,
                               "很不满意": 1, "不太满意": 2, "还行": 3, "挺好": 4, "很好": 5}
_CSAT_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}


class CsatError(ValueError):
    """The answer is not a rating we understand (the message says what is accepted)."""


def parse_csat(answer: str | int) -> tuple[int, str]:
    """非常满意 / 满意 / 一般 / 不满意 / 非常不满意 or 1–5 (Arabic or Chinese digit, 「4分」) → (score, label)."""
    if isinstance(answer, int) and not isinstance(answer, bool):
        if 1 <= answer <= 5:
            return answer, str(answer)
        raise CsatError("csat: 评分应为1到5分")
    text = str(answer).strip()
    for label in sorted(CSAT_LABELS, key=len, reverse=True):  # 不满意 before 满意
        if label in text:
            return CSAT_LABELS[label], label
    match = re.fullmatch(r"\s*([1-5一二两三四五])\s*(?:分|星)?\s*[。.!！]?\s*", text)
    if match:
        raw = match.group(1)
        score = int(raw) if raw.isdigit() else _CSAT_DIGITS[raw]
        return score, str(score)
    raise CsatError("csat: 请回复1到5分（5 非常满意、4 满意、3 一般、2 不满意、1 非常不满意）")


@dataclass(frozen=True)
class ToolCallRecord:
    tool: str
    arguments: dict[str, Any]
    result: Any


_CONVERSATIONS, _TURNS = ConversationRecord.__table__, TurnRecord.__table__
_SUMMARY = (select(_CONVERSATIONS.c.turn_count, _CONVERSATIONS.c.account_no, _CONVERSATIONS.c.topic,
                   _CONVERSATIONS.c.intents, _CONVERSATIONS.c.tickets, _CONVERSATIONS.c.outcome)
            .where(_CONVERSATIONS.c.id == bindparam("record_id")))
_RECORD_ID = select(_CONVERSATIONS.c.id).where(_CONVERSATIONS.c.conversation_id == bindparam("conversation_id"))
_INSERT_CONVERSATION = insert(_CONVERSATIONS)
# The turn once per (conversation record, message id): on a conflict nothing is inserted and no id
# comes back. The two dialects PowerDesk runs on (SQLite, PostgreSQL) both have ON CONFLICT.
_TURN_KEY = ["conversation_pk", "message_id"]
_INSERT_TURN_ONCE = {
    "postgresql": postgresql.insert(_TURNS).on_conflict_do_nothing(index_elements=_TURN_KEY)
    .returning(_TURNS.c.id),
    "sqlite": sqlite.insert(_TURNS).on_conflict_do_nothing(index_elements=_TURN_KEY).returning(_TURNS.c.id),
}
_RECORDED_TURN = (select(_TURNS.c.id, _TURNS.c.brain, _TURNS.c.reply_text, _TURNS.c.citations,
                         _TURNS.c.grounded, _TURNS.c.tool_calls)
                  .where(_TURNS.c.conversation_pk == bindparam("record_id"),
                         _TURNS.c.message_id == bindparam("message_id")))
# Every summary column is set on every turn (unchanged ones to their old value), so it is one statement.
_UPDATE_SUMMARY = (update(_CONVERSATIONS).where(_CONVERSATIONS.c.id == bindparam("record_id"))
                   .values({column: bindparam(column) for column in
                            ("turn_count", "brain", "account_no", "topic", "intents", "tickets", "outcome")}))


@dataclass(frozen=True)
class RecordedTurn:
    """A message's turn as an earlier attempt recorded it: what its reply said."""

    record_id: int
    turn_id: int
    brain: str
    reply_text: str
    citations: list[dict[str, Any]]
    grounded: bool
    tickets: list[str]  # the tickets its tool calls opened


class TurnAlreadyRecorded(Exception):
    """The message id's turn is recorded already; nothing was written. Roll the transaction back
    and answer with `recorded` (see the module docstring)."""

    def __init__(self, recorded: RecordedTurn) -> None:
        super().__init__(f"message_id: already recorded as turn {recorded.turn_id}")
        self.recorded = recorded


def opened_tickets(tool_calls: Sequence[dict[str, Any]]) -> list[str]:
    """The ticket numbers the recorded tool calls opened, or found open from this conversation."""
    tickets = []
    for call in tool_calls or []:
        result = call.get("result") if isinstance(call, dict) else None
        if not isinstance(result, dict):
            continue
        if result.get("status") == "opened" and result.get("ticket_no"):
            tickets.append(str(result["ticket_no"]))
        elif result.get("status") == "duplicate" and result.get("opened_here") and result.get("open_ticket_no"):
            tickets.append(str(result["open_ticket_no"]))
    return tickets


class Recorder:
    """Writes conversations and turns to the database; one short transaction per call.

    Each public method has an `_in(session, ...)` twin that writes in the caller's transaction,
    so the agent records a whole turn (conversation row, turn, audit rows, CSAT, end) in one commit.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def start(self, conversation_id: str, channel: str, brain: str, account_no: str | None = None,
              started_at: datetime | None = None) -> int:
        """The record id of this conversation, created on first use (idempotent across processes)."""
        with self.sessions.begin() as session:
            return self.start_in(session, conversation_id, channel, brain, account_no, started_at)

    def start_in(self, session: Session, conversation_id: str, channel: str, brain: str,
                 account_no: str | None = None, started_at: datetime | None = None) -> int:
        connection = session.connection()  # Core, as in record_turn_in: this runs on first turns
        existing = connection.execute(_RECORD_ID, {"conversation_id": conversation_id}).scalar()
        if existing is not None:
            return int(existing)
        inserted = connection.execute(_INSERT_CONVERSATION, {
            "conversation_id": conversation_id, "channel": channel, "brain": brain, "account_no": account_no,
            "started_at": started_at or datetime.now(UTC), "intents": [], "tickets": [], "turn_count": 0})
        return int(inserted.inserted_primary_key[0])

    def record_turn(self, record_id: int, *, user_text: str, reply_text: str, brain: str,
                    intents: Sequence[str], tool_calls: Sequence[dict[str, Any]],
                    citations: Sequence[dict[str, Any]], latency_ms: int, message_id: str | None = None,
                    grounded: bool = True, violations: Sequence[str] = (), account_no: str | None = None,
                    topic: str | None = None, tickets: Sequence[str] = (),
                    outcome: Outcome | None = None) -> int:
        """Append one turn and update the conversation's running summary.

        Core statements rather than ORM objects: this runs on every turn, and the unit of work
        costs more than the two statements it would issue. A `message_id` recorded already raises
        `TurnAlreadyRecorded` (the transaction is rolled back, nothing is written).
        """
        with self.sessions.begin() as session:
            return self.record_turn_in(
                session, record_id, user_text=user_text, reply_text=reply_text, brain=brain, intents=intents,
                tool_calls=tool_calls, citations=citations, latency_ms=latency_ms, message_id=message_id,
                grounded=grounded, violations=violations, account_no=account_no, topic=topic,
                tickets=tickets, outcome=outcome)

    def record_turn_in(self, session: Session, record_id: int, *, user_text: str, reply_text: str, brain: str,
                       intents: Sequence[str], tool_calls: Sequence[dict[str, Any]],
                       citations: Sequence[dict[str, Any]], latency_ms: int, message_id: str | None = None,
                       grounded: bool = True, violations: Sequence[str] = (), account_no: str | None = None,
                       topic: str | None = None, tickets: Sequence[str] = (),
                       outcome: Outcome | None = None) -> int:
        # Straight on the connection with three fixed statements: their compiled forms are cached,
        # where `.values(**changes)` built and compiled a new statement on every turn.
        connection = session.connection()
        row = connection.execute(_SUMMARY, {"record_id": record_id}).first()
        if row is None:
            raise KeyError(f"record_id: no conversation record {record_id}")
        position = row.turn_count + 1
        values = {
            "conversation_pk": record_id, "position": position, "message_id": message_id, "brain": brain,
            "user_text": user_text, "reply_text": reply_text, "intents": list(intents),
            "tool_calls": [_jsonable(call) for call in tool_calls],
            "citations": [_jsonable(c) for c in citations], "grounded": grounded,
            "violations": list(violations), "latency_ms": latency_ms, "created_at": datetime.now(UTC)}
        turn_id = connection.execute(_INSERT_TURN_ONCE[connection.dialect.name], values).scalar()
        if turn_id is None:  # the conflict: an earlier attempt recorded this message
            recorded = self._recorded(connection, record_id, message_id)
            assert recorded is not None, "ON CONFLICT without a recorded turn"
            raise TurnAlreadyRecorded(recorded)
        current = Outcome(row.outcome) if row.outcome else None
        connection.execute(_UPDATE_SUMMARY, {
            "record_id": record_id, "turn_count": position, "brain": brain,
            "account_no": row.account_no or account_no or None,
            "topic": row.topic or topic or None,
            "intents": list(dict.fromkeys([*(row.intents or []), *intents])),
            "tickets": list(dict.fromkeys([*(row.tickets or []), *tickets])),
            "outcome": _stronger(current, outcome) if outcome is not None else current})
        return int(turn_id)

    @staticmethod
    def _recorded(connection: Any, record_id: int, message_id: str | None) -> RecordedTurn | None:
        found = connection.execute(_RECORDED_TURN, {"record_id": record_id, "message_id": message_id}).first()
        if found is None:
            return None
        return RecordedTurn(record_id=record_id, turn_id=int(found.id), brain=found.brain,
                            reply_text=found.reply_text, citations=list(found.citations or []),
                            grounded=bool(found.grounded), tickets=opened_tickets(found.tool_calls))

    def finish(self, record_id: int, outcome: Outcome | None = None) -> None:
        """Close the conversation; with no outcome yet, it was abandoned."""
        with self.sessions.begin() as session:
            self.finish_in(session, record_id, outcome)

    def finish_in(self, session: Session, record_id: int, outcome: Outcome | None = None) -> None:
        # populate_existing: the turn's Core update may have changed the row this session holds
        conversation = session.get(ConversationRecord, record_id, populate_existing=True)
        if conversation is None:
            raise KeyError(f"record_id: no conversation record {record_id}")
        if outcome is not None:
            conversation.outcome = _stronger(conversation.outcome, outcome)
        conversation.outcome = conversation.outcome or Outcome.ABANDONED
        conversation.ended_at = conversation.ended_at or datetime.now(UTC)

    def record_csat(self, record_id: int, answer: str | int) -> int:
        """Store the customer's rating; returns the 1..5 score. Raises CsatError on other text."""
        score, label = parse_csat(answer)
        with self.sessions.begin() as session:
            self.store_csat_in(session, record_id, score, label)
        return score

    @staticmethod
    def store_csat_in(session: Session, record_id: int, score: int, label: str) -> None:
        # populate_existing: the turn's Core update may have changed the row this session holds
        conversation = session.get(ConversationRecord, record_id, populate_existing=True)
        if conversation is None:
            raise KeyError(f"record_id: no conversation record {record_id}")
        conversation.csat_score, conversation.csat_label = score, label
        conversation.csat_at = datetime.now(UTC)


# Which outcome wins when a conversation has several: a handoff or ticket says more than "resolved".
_OUTCOME_RANK = {Outcome.ABANDONED: 0, Outcome.RESOLVED: 1, Outcome.TICKET: 2, Outcome.TRANSFERRED: 3}


def _stronger(current: Outcome | None, new: Outcome) -> Outcome:
    if current is None or _OUTCOME_RANK[new] >= _OUTCOME_RANK[current]:
        return new
    return current


def _jsonable(value: Any) -> Any:
    """Tool results hold Decimals and dates; JSON columns want strings."""
    from datetime import date
    from decimal import Decimal
    from enum import Enum

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | date | datetime):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass(frozen=True)
class FcrResult:
    needs: int  # first contacts in the period (the denominator)
    resolved_first: int  # of which resolved with no repeat contact within the window
    window_days: int
    pending: int = 0  # first contacts whose repeat-contact window is still open at `as_of` (not in needs)

    @property
    def rate(self) -> float | None:
        return self.resolved_first / self.needs if self.needs else None


def first_contact_resolution(session: Session, start: datetime, end: datetime,
                             window_days: int | None = None, channel: str | None = None,
                             as_of: datetime | None = None) -> FcrResult:
    """FCR of the conversations started in [start, end) (T/CI 1281 table 1).

    With `as_of`, a first contact whose window has not closed by then is neither resolved nor
    unresolved yet: it is counted as `pending`, outside the rate, instead of as a failure.
    """
    window_days = fcr_window_days() if window_days is None else window_days
    window = timedelta(days=window_days)
    query = select(ConversationRecord).where(ConversationRecord.started_at < end + window,
                                            ConversationRecord.started_at >= start - window)
    rows = list(session.scalars(query.order_by(ConversationRecord.started_at, ConversationRecord.id)))
    by_need: dict[tuple[str, str], list[ConversationRecord]] = {}
    for row in rows:
        if row.account_no and row.topic:
            by_need.setdefault((row.account_no, row.topic), []).append(row)

    needs = resolved = pending = 0
    for row in rows:
        if not (start <= row.started_at < end) or (channel and row.channel != channel):
            continue
        same = by_need.get((row.account_no, row.topic), []) if row.account_no and row.topic else [row]
        earlier = [o for o in same
                   if o.started_at < row.started_at and row.started_at - o.started_at <= window]
        if earlier:
            continue  # a repeat contact about a need already counted
        if as_of is not None and row.started_at + window > as_of:
            pending += 1  # the customer may still come back about it
            continue
        needs += 1
        later = [o for o in same if o.id != row.id and o.started_at >= row.started_at
                 and o.started_at - row.started_at <= window]
        if row.outcome == Outcome.RESOLVED and not later:
            resolved += 1
    return FcrResult(needs=needs, resolved_first=resolved, window_days=window_days, pending=pending)
