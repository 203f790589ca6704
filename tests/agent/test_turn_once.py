"""A message whose turn was recorded but whose answer was lost is recorded once when it is resent.

The answer is lost after the commit when a database connection is cut at COMMIT or the replica dies
before it saves the state and the reply. Here the second attempt runs on a state store that never
got them (a fresh one holding the state from before the turn), on SQLite and the real PostgreSQL:
exactly what the client's resend of the same message id meets on another replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.agent import Agent
from agent.models import ConversationRecord, TurnRecord
from agent.state import ConversationState, InMemoryStateStore
from billing_core.db.models import WorkOrder
from tests.agent.world import ACCOUNT_A, NOW, World, build_world
from tests.billing.conftest import postgres_server  # noqa: F401  (fixture)
from tools.models import AuditEvent


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        yield build_world(f"sqlite:///{tmp_path / 'agent.db'}")
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create_database()
    world = build_world(url)
    try:
        yield world
    finally:
        world.sessions.kw["bind"].dispose()
        server.drop_database(url.rsplit("/", 1)[1])


def _agent(world: World, state: ConversationState | None = None) -> Agent:
    store = InMemoryStateStore()
    if state is not None:
        store.save(state)
    return Agent(sessions=world.sessions, store=store, brain="local", clock=lambda: NOW, knowledge=lambda: None)


def _rows(world: World, conversation_id: str) -> list[tuple[str | None, str]]:
    with world.sessions() as session:
        return [tuple(row) for row in session.execute(
            select(TurnRecord.message_id, TurnRecord.reply_text).join(ConversationRecord)
            .where(ConversationRecord.conversation_id == conversation_id).order_by(TurnRecord.id))]


def test_a_resent_dispute_confirmation_opens_one_ticket_and_records_one_turn(world_on: World) -> None:
    world, cid = world_on, "once-1"
    first_replica = _agent(world)
    first_replica.handle(cid, "web", f"户号{ACCOUNT_A}尾号123X", "m-1")
    asked = first_replica.handle(cid, "web", "5月电费读数不对，我要申请核查", "m-2")
    assert asked.awaiting == "confirm"
    before = first_replica.state(cid)
    first = first_replica.handle(cid, "web", "是", "m-3")
    assert first.outcome == "ticket" and len(first.tickets) == 1 and first.tickets[0] in first.text

    # The answer never reached the client; its resend lands where the state is still `before`.
    other_replica = _agent(world, before)
    again = other_replica.handle(cid, "web", "是", "m-3")
    assert (again.text, again.tickets, again.outcome) == (first.text, first.tickets, "ticket")
    state = other_replica.state(cid)
    assert state is not None and state.tickets == first.tickets and state.pending is None
    assert state.history[-1] == {"role": "assistant", "text": first.text}

    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 1
        audited = session.scalars(select(AuditEvent.status).where(AuditEvent.tool == "open_dispute")).all()
        assert audited == ["opened"]  # the resend's own call (a duplicate) is not audited a second time
        record = session.scalars(select(ConversationRecord).where(ConversationRecord.conversation_id == cid)).one()
        assert record.turn_count == 3 and record.tickets == first.tickets
    assert [mid for mid, _ in _rows(world, cid)] == ["m-1", "m-2", "m-3"]

    after = other_replica.handle(cid, "web", "再见", "m-4")  # the conversation goes on from there
    assert after.message_id == "m-4" and [mid for mid, _ in _rows(world, cid)][-1] == "m-4"


def test_a_resend_of_a_first_turn_finds_the_conversation_record(world_on: World) -> None:
    """The first attempt created the conversation record too: the resend (no record id in its
    state) finds it and records nothing new."""
    world, cid = world_on, "once-2"
    first = _agent(world).handle(cid, "web", "电费怎么交", "m-1")
    again = _agent(world).handle(cid, "web", "电费怎么交", "m-1")
    assert again.text == first.text
    assert _rows(world, cid) == [("m-1", first.text)]
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ConversationRecord)) == 1


def test_a_resend_after_the_ticket_committed_but_the_turn_did_not_records_the_ticket(world_on: World) -> None:
    """The more likely cut: the dispute tool committed its ticket, then the turn record failed (a
    503, nothing recorded). The resend's tool call finds this conversation's open dispute: the turn
    is recorded once, with that ticket and outcome, and no second ticket is opened."""
    world, cid = world_on, "once-3"
    first_replica = _agent(world)
    first_replica.handle(cid, "web", f"户号{ACCOUNT_A}尾号123X", "m-1")
    first_replica.handle(cid, "web", "5月电费读数不对，我要申请核查", "m-2")
    before = first_replica.state(cid)
    # The first attempt: the tool runs and commits; its turn is never recorded (record=False).
    unrecorded = Agent(sessions=world.sessions, store=InMemoryStateStore(), brain="local", clock=lambda: NOW,
                       knowledge=lambda: None, record=False)
    assert before is not None
    unrecorded.store.save(before)
    lost = unrecorded.handle(cid, "web", "是", "m-3")
    assert lost.outcome == "ticket" and len(lost.tickets) == 1

    again = _agent(world, before).handle(cid, "web", "是", "m-3")
    assert again.tickets == lost.tickets and again.outcome == "ticket" and lost.tickets[0] in again.text
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 1
        record = session.scalars(select(ConversationRecord).where(ConversationRecord.conversation_id == cid)).one()
        assert record.tickets == lost.tickets and record.outcome == "ticket"
    assert [mid for mid, _ in _rows(world, cid)] == ["m-1", "m-2", "m-3"]


def test_a_resent_wrong_identity_answer_counts_once(world_on: World) -> None:
    """A wrong 尾号 whose reply was lost, resent with its message id to another replica: one wrong
    answer on record, not two (the limit is three per conversation), and the resend is told the
    same attempts left. A new message with the same wrong answer is a new try and counts."""
    from tools.models import IdentityAttempt

    world, cid = world_on, "once-id"
    first = _agent(world).handle(cid, "web", f"户号{ACCOUNT_A}尾号0000", "m-1")
    again = _agent(world).handle(cid, "web", f"户号{ACCOUNT_A}尾号0000", "m-1")
    assert again.text == first.text and "还可以再试 2 次" in first.text, first.text

    def wrong_answers() -> int:
        with world.sessions() as session:
            return session.scalar(select(func.count()).select_from(IdentityAttempt)
                                  .where(IdentityAttempt.conversation_id == cid,
                                         IdentityAttempt.success.is_(False))) or 0

    assert wrong_answers() == 1
    new_try = _agent(world).handle(cid, "web", f"户号{ACCOUNT_A}尾号0000", "m-2")
    assert wrong_answers() == 2 and "还可以再试 1 次" in new_try.text, new_try.text
    right = _agent(world).handle(cid, "web", f"户号{ACCOUNT_A}尾号123X", "m-3")  # not locked out by the resend
    assert "身份核实通过" in right.text, right.text
