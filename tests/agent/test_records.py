"""Conversation/turn records, CSAT parsing and storage, and first-contact resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from agent.migrate import upgrade
from agent.models import ConversationRecord, Outcome, TurnRecord
from agent.records import (CsatError, Recorder, TurnAlreadyRecorded, first_contact_resolution, opened_tickets,
                           parse_csat)
from billing_core.db.engine import make_engine
from tests.billing.conftest import empty_database_url, postgres_server  # noqa: F401  (fixtures)


@pytest.fixture()
def recorder(empty_database_url: str) -> Iterator[Recorder]:  # noqa: F811
    """Records on SQLite and on the real PostgreSQL server (the agent chain migrated alone)."""
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    yield Recorder(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


@pytest.mark.parametrize(("answer", "score"), [("满意", 4), ("非常满意", 5), ("一般", 3), ("不满意", 2), ("非常不满意", 1),
                                               (4, 4), ("2分", 2), ("五", 5), ("3", 3)])
def test_parse_csat(answer: str | int, score: int) -> None:
    assert parse_csat(answer)[0] == score


@pytest.mark.parametrize("answer", ["好的", "6", 0, "今天天气"])
def test_parse_csat_refuses_other_text(answer: str | int) -> None:
    with pytest.raises(CsatError, match="csat"):
        parse_csat(answer)


def test_turns_and_conversation_summary_are_recorded(recorder: Recorder) -> None:
    rid = recorder.start("conv-1", "wechat", "local")
    assert recorder.start("conv-1", "wechat", "local") == rid  # idempotent
    recorder.record_turn(rid, user_text="查电费", reply_text="请提供户号", brain="local", intents=["lookup_bill"],
                         tool_calls=[], citations=[], latency_ms=3, topic="lookup_bill")
    recorder.record_turn(rid, user_text="0100012345 1234", reply_text="您5月电费242.55元", brain="local",
                         intents=["inform"], latency_ms=5, account_no="0100012345", outcome=Outcome.RESOLVED,
                         tool_calls=[{"tool": "lookup_bill", "arguments": {"period": "2026-05"},
                                      "result": {"amount": Decimal("242.55")}}],
                         citations=[{"article_id": "bill-001", "title": "如何看账单"}])
    recorder.finish(rid)
    assert recorder.record_csat(rid, "非常满意") == 5
    with recorder.sessions() as session:
        conv = session.scalar(select(ConversationRecord)
                              .where(ConversationRecord.conversation_id == "conv-1"))
        assert conv.turn_count == 2 and conv.account_no == "0100012345" and conv.topic == "lookup_bill"
        assert conv.outcome == Outcome.RESOLVED and conv.csat_score == 5 and conv.ended_at is not None
        turns = session.scalars(select(TurnRecord).order_by(TurnRecord.position)).all()
        assert turns[1].tool_calls[0]["result"]["amount"] == "242.55"
        assert turns[1].citations[0]["article_id"] == "bill-001"


def test_unfinished_conversation_is_abandoned_and_ticket_outranks_resolved(recorder: Recorder) -> None:
    rid = recorder.start("conv-2", "web", "local")
    recorder.finish(rid)
    rid3 = recorder.start("conv-3", "web", "local")
    recorder.record_turn(rid3, user_text="a", reply_text="b", brain="local", intents=[], tool_calls=[],
                         citations=[], latency_ms=1, outcome=Outcome.TICKET, tickets=["WO202611230001"])
    recorder.record_turn(rid3, user_text="c", reply_text="d", brain="local", intents=[], tool_calls=[],
                         citations=[], latency_ms=1, outcome=Outcome.RESOLVED)
    with recorder.sessions() as session:
        assert session.scalar(select(ConversationRecord.outcome).where(ConversationRecord.id == rid)) \
            == Outcome.ABANDONED
        conv3 = session.get(ConversationRecord, rid3)
        assert conv3.outcome == Outcome.TICKET and conv3.tickets == ["WO202611230001"]


def _conversation(recorder: Recorder, cid: str, account: str, topic: str, at: datetime, outcome: Outcome,
                  channel: str = "web") -> None:
    rid = recorder.start(cid, channel, "local", account_no=account, started_at=at)
    recorder.record_turn(rid, user_text="x", reply_text="y", brain="local", intents=[topic], tool_calls=[],
                         citations=[], latency_ms=1, topic=topic, outcome=outcome)


def test_a_message_id_is_recorded_once(recorder: Recorder) -> None:
    """A resend whose first attempt committed (its answer lost) writes nothing and gets that turn."""
    rid = recorder.start("conv-once", "web", "local")
    other = recorder.start("conv-other", "web", "local")
    first = recorder.record_turn(rid, user_text="查电费", reply_text="您5月电费242.55元", brain="local",
                                 intents=["lookup_bill"], tool_calls=[], citations=[{"article_id": "bill-001"}],
                                 latency_ms=3, message_id="m-1", outcome=Outcome.RESOLVED)
    opened = {"tool": "open_dispute", "arguments": {}, "result": {"status": "opened", "ticket_no": "WO1"}}
    with pytest.raises(TurnAlreadyRecorded) as caught:
        recorder.record_turn(rid, user_text="查电费", reply_text="another text", brain="llm", intents=["x"],
                             tool_calls=[opened], citations=[], latency_ms=9, message_id="m-1",
                             tickets=["WO1"], outcome=Outcome.TICKET)
    recorded = caught.value.recorded
    assert (recorded.turn_id, recorded.record_id, recorded.reply_text, recorded.brain) == \
        (first, rid, "您5月电费242.55元", "local")
    assert recorded.citations == [{"article_id": "bill-001"}] and recorded.tickets == []
    # The same id in another conversation is another message; no id (staff lines) is never a resend.
    recorder.record_turn(other, user_text="查电费", reply_text="b", brain="local", intents=[], tool_calls=[],
                         citations=[], latency_ms=1, message_id="m-1")
    for _ in range(2):
        recorder.record_turn(rid, user_text="", reply_text="坐席：您好", brain="staff", intents=[], tool_calls=[],
                             citations=[], latency_ms=0)
    with recorder.sessions() as session:
        rows = session.execute(select(TurnRecord.message_id, TurnRecord.reply_text)
                               .where(TurnRecord.conversation_pk == rid).order_by(TurnRecord.id)).all()
        assert [tuple(row) for row in rows] == [("m-1", "您5月电费242.55元"), (None, "坐席：您好"), (None, "坐席：您好")]
        conv = session.get(ConversationRecord, rid)
        # The refused attempt changed nothing in the summary: no ticket, no intent, no outcome.
        assert conv.turn_count == 3 and conv.tickets == [] and conv.intents == ["lookup_bill"]
        assert conv.outcome == Outcome.RESOLVED


def test_the_recorded_turn_names_the_tickets_its_calls_opened(recorder: Recorder) -> None:
    rid = recorder.start("conv-ticket", "web", "local")
    opened = {"tool": "open_dispute", "arguments": {}, "result": {"status": "opened", "ticket_no": "WO7"}}
    refused = {"tool": "open_dispute", "arguments": {}, "result": {"status": "duplicate", "open_ticket_no": "WO7"}}
    recorder.record_turn(rid, user_text="是", reply_text="已受理，工单号 WO7", brain="local", intents=["affirm"],
                         tool_calls=[opened], citations=[], latency_ms=3, message_id="m-9",
                         tickets=["WO7"], outcome=Outcome.TICKET)
    with pytest.raises(TurnAlreadyRecorded) as caught:
        recorder.record_turn(rid, user_text="是", reply_text="已有工单 WO7", brain="local", intents=["affirm"],
                             tool_calls=[refused], citations=[], latency_ms=3, message_id="m-9")
    assert caught.value.recorded.tickets == ["WO7"] and caught.value.recorded.reply_text == "已受理，工单号 WO7"
    # A conversation's own open ticket found again (its first attempt's turn was never recorded).
    found = {"status": "duplicate", "open_ticket_no": "WO7", "opened_here": True}
    assert opened_tickets([opened, refused, {"tool": "open_dispute", "result": found}]) == ["WO7", "WO7"]


def test_the_migration_keeps_turns_recorded_twice_before_it(empty_database_url: str) -> None:  # noqa: F811
    """Rows doubled by the old gap stay; the later copy loses its message id so the key can be built."""
    from sqlalchemy import insert

    upgrade(empty_database_url, "0003cx")
    engine = make_engine(empty_database_url)
    try:
        now = datetime.now(UTC)
        with engine.begin() as connection:
            conversations, turns = ConversationRecord.__table__, TurnRecord.__table__
            rid = connection.execute(insert(conversations).values(
                conversation_id="c-dup", channel="web", brain="local", intents=[], tickets=[], turn_count=3,
                started_at=now)).inserted_primary_key[0]
            connection.execute(insert(turns), [
                {"conversation_pk": rid, "position": n, "message_id": mid, "brain": "local", "user_text": text,
                 "reply_text": text, "intents": [], "tool_calls": [], "citations": [], "violations": [],
                 "grounded": True, "latency_ms": 1, "created_at": now}
                for n, (mid, text) in enumerate([("m-1", "first"), ("m-1", "again"), (None, "staff")], 1)])
        upgrade(empty_database_url)
        with engine.connect() as connection:
            rows = connection.execute(select(TurnRecord.message_id, TurnRecord.reply_text)
                                      .order_by(TurnRecord.id)).all()
        assert [tuple(row) for row in rows] == [("m-1", "first"), (None, "again"), (None, "staff")]
    finally:
        engine.dispose()


def test_first_contact_resolution_counts_repeat_contacts_within_the_window(recorder: Recorder) -> None:
    t0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
    _conversation(recorder, "a1", "0100000001", "lookup_bill", t0, Outcome.RESOLVED)  # FCR
    _conversation(recorder, "b1", "0100000002", "explain_bill", t0, Outcome.RESOLVED)  # repeated on day 3
    _conversation(recorder, "b2", "0100000002", "explain_bill", t0 + timedelta(days=3), Outcome.RESOLVED)
    _conversation(recorder, "c1", "0100000003", "open_dispute", t0, Outcome.TICKET)  # not resolved
    _conversation(recorder, "d1", "0100000004", "lookup_bill", t0, Outcome.RESOLVED)  # back after 9 days: new
    _conversation(recorder, "d2", "0100000004", "lookup_bill", t0 + timedelta(days=9), Outcome.RESOLVED)
    _conversation(recorder, "e1", "0100000001", "payment_status", t0 + timedelta(days=1), Outcome.RESOLVED)
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    with recorder.sessions() as session:
        result = first_contact_resolution(session, start, end)
        assert (result.needs, result.resolved_first) == (6, 4)  # a1, d1, d2, e1 of a1 b1 c1 d1 d2 e1
        wider = first_contact_resolution(session, start, end, window_days=10)
        assert (wider.needs, wider.resolved_first) == (5, 2)  # d2 is now a repeat of d1


def test_fcr_window_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.records import fcr_window_days

    assert fcr_window_days() == 7
    monkeypatch.setenv("POWERDESK_FCR_WINDOW_DAYS", "10")
    assert fcr_window_days() == 10
    monkeypatch.setenv("POWERDESK_FCR_WINDOW_DAYS", "ten")
    with pytest.raises(ValueError, match="POWERDESK_FCR_WINDOW_DAYS"):
        fcr_window_days()


def test_a_message_id_already_on_record_is_not_recorded_twice(recorder: Recorder) -> None:
    """A resend whose first run committed its turn but lost its reply (Redis down) runs again."""
    rid = recorder.start("conv-resend", "web", "local")
    turn = {"reply_text": "您5月电费242.55元", "brain": "local", "intents": ["lookup_bill"], "tool_calls": [],
            "citations": [], "latency_ms": 3}
    first = recorder.record_turn(rid, user_text="查电费", message_id="m-1", **turn)
    with pytest.raises(TurnAlreadyRecorded) as caught:
        recorder.record_turn(rid, user_text="查电费", message_id="m-1", **turn)
    assert caught.value.recorded.turn_id == first
    recorder.record_turn(rid, user_text="查电费", message_id="m-2", **turn)
    recorder.record_turn(rid, user_text="查电费", **turn)  # no id: nothing to recognise, each recorded
    recorder.record_turn(rid, user_text="查电费", **turn)
    other = recorder.start("conv-other", "web", "local")
    recorder.record_turn(other, user_text="查电费", message_id="m-1", **turn)  # ids are per conversation
    with recorder.sessions() as session:
        mine = session.scalars(select(TurnRecord.message_id).where(TurnRecord.conversation_pk == rid)
                               .order_by(TurnRecord.position)).all()
        assert mine == ["m-1", "m-2", None, None]
        assert session.get(ConversationRecord, rid).turn_count == 4
        assert session.scalar(select(TurnRecord.id).where(TurnRecord.conversation_pk == other)) is not None
