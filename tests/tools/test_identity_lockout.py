"""Identity lock-out across conversations and channels: every wrong answer counts, a locked 户号
refuses the right answer until the lock ends (on every channel), parallel guesses get no extra
tries, repeat locks last longer, and staff see the lock. SQLite and PostgreSQL (`world`)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World
from tests.tools.factories import NOW
from tools.identity_locks import account_identity_lock, active_identity_locks
from tools.models import IdentityAttempt, LockScope
from tools.registry import call_tool

WRONG_B = {"account_no": ACCOUNT_B, "last4": "0000"}
RIGHT_B = {"account_no": ACCOUNT_B, "last4": "9000"}


def _at(minutes: float):  # noqa: ANN202
    return lambda: NOW + timedelta(minutes=minutes)


def test_hotline_wrong_roads_count_against_the_registered_account(world: World) -> None:
    # Two wrong roads from A's registered phone, in two calls, plus three wrong tails on the web:
    # five wrong answers against A's 户号, from two channels -> A is locked.
    for i in range(2):
        ctx = world.ctx(f"ivr-call-{i}", channel="ivr", identity="13800138000")
        assert call_tool(ctx, "verify_identity", {"method": "hotline", "check_answer": "中山路"}).status == "failed"
    results = [call_tool(world.ctx(f"web-{i}"), "verify_identity", {"account_no": ACCOUNT_A, "last4": f"00{i}1"})
               for i in range(3)]
    assert [r.status for r in results] == ["failed", "failed", "locked"]
    # The right road from the registered phone is now refused too, and says nothing about which 户号.
    call = world.ctx("ivr-call-right", channel="ivr", identity="13800138000")
    refused = call_tool(call, "verify_identity", {"method": "hotline", "check_answer": "体育西路"})
    assert refused.status == "locked" and call.principal is None
    assert "该户号" not in refused.message and ACCOUNT_A not in refused.message
    assert "转人工" in refused.message
    # So is the bound WeChat: the lock is on the 户号, for every online way in.
    wx = world.ctx("wx-locked", channel="wechat", identity="openid-A")
    assert call_tool(wx, "verify_identity", {"method": "wechat_openid"}).status == "locked"


def test_wrong_answers_in_a_locked_conversation_still_count_against_the_account(world: World) -> None:
    ctx = world.ctx("one-conversation")
    statuses = [call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_B, "last4": f"000{i}"}).status
                for i in range(5)]
    assert statuses == ["failed", "failed", "locked", "locked", "locked"]
    # The two guesses after the conversation lock were counted: B is locked for a new conversation.
    owner = call_tool(world.ctx("owner"), "verify_identity", RIGHT_B)
    assert owner.status == "locked" and owner.locked_until == NOW + timedelta(minutes=60)


def test_the_right_answer_during_a_lock_is_refused_recorded_and_not_counted(world: World) -> None:
    for i in range(5):
        call_tool(world.ctx(f"probe-{i}"), "verify_identity", WRONG_B)
    for i in range(3):  # the owner tries, in vain, three times
        assert call_tool(world.ctx(f"owner-{i}", clock=_at(10)), "verify_identity", RIGHT_B).status == "locked"
    with world.sessions() as session:
        refused = session.scalars(select(IdentityAttempt).where(IdentityAttempt.refused_by_lock.is_(True))).all()
        assert len(refused) == 3 and not any(a.success for a in refused)
        view = account_identity_lock(session, ACCOUNT_B, NOW + timedelta(minutes=10))
    assert view is not None and (view.wrong_answers, view.refused_right_answers) == (5, 3)
    # The lock ends on time; the right answer is accepted at once.
    assert call_tool(world.ctx("owner-later", clock=_at(60.5)), "verify_identity", RIGHT_B).status == "verified"


def test_a_second_lock_within_a_day_lasts_twice_as_long(world: World) -> None:
    for i in range(5):
        call_tool(world.ctx(f"first-{i}"), "verify_identity", WRONG_B)
    later = [call_tool(world.ctx(f"second-{i}", clock=_at(70 + i)), "verify_identity", WRONG_B)
             for i in range(5)]
    assert [r.status for r in later] == ["failed"] * 4 + ["locked"]
    assert later[-1].locked_until == NOW + timedelta(minutes=74 + 120)
    # Expired as the policy says: refused just before, verified just after.
    assert call_tool(world.ctx("o-1", clock=_at(74 + 119)), "verify_identity", RIGHT_B).status == "locked"
    assert call_tool(world.ctx("o-2", clock=_at(74 + 121)), "verify_identity", RIGHT_B).status == "verified"


def test_parallel_guesses_get_no_more_tries_than_sequential_ones(world: World) -> None:
    # Twelve conversations guess at once: only the first four answers are checked, then it is locked.
    tails = [f"{n:04d}" for n in range(100, 112)]

    def guess(i: int) -> str:
        ctx = world.ctx(f"burst-{i}")
        return call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_B, "last4": tails[i]}).status

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(guess, range(12)))
    assert sorted(statuses) == ["failed"] * 4 + ["locked"] * 8
    with world.sessions() as session:
        locks = active_identity_locks(session, NOW, scope=LockScope.ACCOUNT)
    assert [(v.account_no, v.customer_exists) for v in locks] == [(ACCOUNT_B, True)]


def test_staff_view_lists_account_and_conversation_locks(world: World) -> None:
    ghost = "440188888888"
    for i in range(5):
        channel, identity = ("wechat", f"openid-x{i}") if i % 2 else ("web", None)
        call_tool(world.ctx(f"ghost-{i}", channel=channel, identity=identity), "verify_identity",
                  {"account_no": ghost, "last4": "0000"})
    conversation = world.ctx("three-wrong")
    for tail in ("1111", "2222", "3333"):
        call_tool(conversation, "verify_identity", {"account_no": ACCOUNT_A, "last4": tail})
    for i in range(5):  # an unregistered caller guessing roads: locked by the caller number
        call_tool(world.ctx(f"ivr-stranger-{i}", channel="ivr", identity="13700000000"), "verify_identity",
                  {"method": "hotline", "check_answer": "中山路"})
    with world.sessions() as session:
        views = {(v.scope, v.key): v for v in active_identity_locks(session, NOW)}
        assert "13700000000" not in str(views)
        assert views[(LockScope.ACCOUNT, "ani:137****0000")].account_no is None
        assert account_identity_lock(session, ACCOUNT_A, NOW) is None  # 3 wrong answers: A is not locked
        assert active_identity_locks(session, NOW + timedelta(minutes=61), scope=LockScope.ACCOUNT) == []
    account = views[(LockScope.ACCOUNT, ghost)]
    assert account.customer_exists is False and account.wrong_answers == 5
    assert account.channels == ["web", "wechat"] and account.conversations == 5
    assert views[(LockScope.CONVERSATION, "three-wrong")].wrong_answers == 3
