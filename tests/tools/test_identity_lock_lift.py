"""Staff lift an identity lock once the customer proved who they are to a person: the lock ends,
the earlier wrong answers stay on record but stop counting, a later lock still doubles, and a bad
or late request changes nothing. SQLite and PostgreSQL (`world`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.tools.conftest import ACCOUNT_B, World
from tests.tools.factories import NOW
from tools.identity_locks import (LiftInputError, LockAlreadyEnded, LockNotFound, StaffPrincipal,
                                  account_identity_lock, active_identity_locks, lift_identity_lock)
from tools.models import IdentityAttempt, IdentityLock, IdentityLockLift, LockScope
from tools.registry import call_tool

WRONG_B = {"account_no": ACCOUNT_B, "last4": "0000"}
RIGHT_B = {"account_no": ACCOUNT_B, "last4": "9000"}
STAFF = StaffPrincipal("staff:0042")


def _at(minutes: float):  # noqa: ANN202
    return lambda: NOW + timedelta(minutes=minutes)


def _lock_b(world: World) -> int:
    for i in range(5):
        call_tool(world.ctx(f"probe-{i}"), "verify_identity", WRONG_B)
    with world.sessions() as session:
        view = account_identity_lock(session, ACCOUNT_B, NOW)
    assert view is not None
    return view.id


def _lift(world: World, lock_id: int, minutes: float, reason: str = "营业厅核验户主身份证件") -> object:
    with world.sessions() as session:
        return lift_identity_lock(session, STAFF, lock_id, reason, NOW + timedelta(minutes=minutes))


def test_a_lifted_account_lock_lets_the_owner_in_and_keeps_the_history(world: World) -> None:
    lock_id = _lock_b(world)
    lifted = _lift(world, lock_id, 5)
    assert lifted.was_locked_until == NOW + timedelta(minutes=60) and lifted.lifted_by == "staff:0042"
    assert call_tool(world.ctx("owner", clock=_at(6)), "verify_identity", RIGHT_B).status == "verified"
    with world.sessions() as session:
        assert active_identity_locks(session, NOW + timedelta(minutes=6)) == []
        lock = session.get(IdentityLock, lock_id)
        assert lock is not None and lock.locked_until == NOW + timedelta(minutes=5)  # ended, not deleted
        [row] = session.scalars(select(IdentityLockLift)).all()
        assert (row.lock_id, row.scope, row.key, row.reason) == (lock_id, LockScope.ACCOUNT, ACCOUNT_B,
                                                                 "营业厅核验户主身份证件")
        wrong = session.scalar(select(func.count()).where(IdentityAttempt.claimed_account == ACCOUNT_B,
                                                          IdentityAttempt.success.is_(False)))
        assert wrong == 5  # the failures stay on record


def test_after_a_lift_the_count_starts_again_and_the_next_lock_doubles(world: World) -> None:
    lock_id = _lock_b(world)
    _lift(world, lock_id, 5)
    # Without the reset, the first slip (the sixth wrong answer in the hour) would lock B again.
    first = call_tool(world.ctx("slip", clock=_at(6)), "verify_identity", WRONG_B)
    assert first.status == "failed" and first.attempts_left == 2  # the conversation's 3 - 1; the 户号 has 4
    later = [call_tool(world.ctx(f"again-{i}", clock=_at(7 + i)), "verify_identity", WRONG_B) for i in range(4)]
    assert [r.status for r in later] == ["failed"] * 3 + ["locked"]
    # The lifted lock was within 24 h: this one lasts twice as long.
    assert later[-1].locked_until == NOW + timedelta(minutes=10 + 120)


def test_a_lifted_conversation_lock_lets_the_same_conversation_verify(world: World) -> None:
    ctx = world.ctx("three-wrong")
    assert [call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_B, "last4": t}).status
            for t in ("1111", "2222", "3333")] == ["failed", "failed", "locked"]
    with world.sessions() as session:
        [view] = active_identity_locks(session, NOW, scope=LockScope.CONVERSATION)
    _lift(world, view.id, 1, "热线人工核实：户主姓名、身份证号后6位")
    again = world.ctx("three-wrong", clock=_at(2))
    slip = call_tool(again, "verify_identity", {"account_no": ACCOUNT_B, "last4": "4444"})
    assert slip.status == "failed" and slip.attempts_left == 1  # 户号: 4 wrong of 5; conversation: 1 of 3
    assert call_tool(again, "verify_identity", RIGHT_B).status == "verified"


def test_bad_or_late_lifts_change_nothing(world: World) -> None:
    lock_id = _lock_b(world)
    with pytest.raises(LockNotFound):
        _lift(world, lock_id + 999, 1)
    for reason, field in (("   ", "reason"), ("证" * 201, "reason")):
        with pytest.raises(LiftInputError, match=field):
            _lift(world, lock_id, 1, reason)
    with world.sessions() as session, pytest.raises(LiftInputError, match="staff"):
        lift_identity_lock(session, "staff:0042", lock_id, "核验证件", NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="staff_id"):
        StaffPrincipal(" ")
    with pytest.raises(LockAlreadyEnded):  # expired on its own
        _lift(world, lock_id, 61)
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdentityLockLift)) == 0
        assert account_identity_lock(session, ACCOUNT_B, NOW + timedelta(minutes=1)) is not None
    _lift(world, lock_id, 2)
    with pytest.raises(LockAlreadyEnded):  # lifted already
        _lift(world, lock_id, 3)


def test_two_staff_lifting_at_once_lift_it_once(world: World) -> None:
    lock_id = _lock_b(world)

    def lift(i: int) -> str:
        try:
            _lift(world, lock_id, 5, f"核验证件 {i}")
        except LockAlreadyEnded:
            return "ended"
        return "lifted"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(lift, range(4)))
    assert outcomes == ["ended"] * 3 + ["lifted"]
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdentityLockLift)) == 1
