"""verify_identity: the three ways in, neutral failures, attempt limits, lock-out, hand-off."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World
from tests.tools.factories import NOW
from tools.models import HandoffRequest, IdentityAttempt, IdentityLock, LockScope, VerifiedSession
from tools.registry import call_tool


def test_account_and_phone_tail_verifies_and_persists_the_principal(world: World) -> None:
    ctx = world.ctx()
    result = call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    assert result.status == "verified"
    assert ctx.principal is not None and ctx.principal.account_no == ACCOUNT_A
    assert ctx.principal.expires_at == NOW + timedelta(minutes=30)
    with world.sessions() as session:
        row = session.scalar(select(VerifiedSession).where(VerifiedSession.conversation_id == "conv-1"))
        assert row is not None and row.account_no == ACCOUNT_A
    # A fresh context of the same conversation (another process) restores it from the database.
    again = world.ctx()
    assert again.restore_principal() is not None and again.principal.account_no == ACCOUNT_A
    # ...but not on another channel, and not after it expired.
    assert world.ctx(channel="wechat").restore_principal() is None
    late = world.ctx(clock=lambda: NOW + timedelta(minutes=31))
    assert late.restore_principal() is None


def test_id_tail_with_x_and_spaced_account_number_verify(world: World) -> None:
    result = call_tool(world.ctx(), "verify_identity", {"account_no": "4401 0000 0001", "last4": "123x"})
    assert result.status == "verified"


def test_unknown_account_and_wrong_tail_fail_with_the_same_words(world: World) -> None:
    wrong_tail = call_tool(world.ctx("c1"), "verify_identity", {"account_no": ACCOUNT_A, "last4": "0000"})
    unknown = call_tool(world.ctx("c2"), "verify_identity", {"account_no": "440199999999", "last4": "0000"})
    assert wrong_tail.status == unknown.status == "failed"
    assert wrong_tail.message == unknown.message
    assert wrong_tail.model_dump().keys() == unknown.model_dump().keys()


def test_three_failures_lock_the_conversation_and_hand_off(world: World) -> None:
    ctx = world.ctx("conv-lock")
    first = call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "1111"})
    second = call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "2222"})
    assert (first.attempts_left, second.attempts_left) == (2, 1)
    third = call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "3333"})
    assert third.status == "locked" and third.handoff_no.startswith("HO20260626")
    # Even the right secret no longer works in this conversation.
    fourth = call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    assert fourth.status == "locked" and ctx.principal is None
    assert fourth.handoff_no == third.handoff_no  # one hand-off, not one per attempt
    with world.sessions() as session:
        lock = session.scalar(select(IdentityLock).where(IdentityLock.scope == LockScope.CONVERSATION))
        assert lock is not None and lock.key == "conv-lock"
        handoffs = session.scalars(select(HandoffRequest)).all()
        assert [h.reason for h in handoffs] == ["verification_locked"]
        assert handoffs[0].account_no is None  # never verified: no account on the hand-off


def test_failures_across_conversations_lock_the_claimed_account(world: World) -> None:
    # Five failures against one 户号 from five conversations (each under its own limit of 3).
    wrong = {"account_no": ACCOUNT_B, "last4": "0000"}
    results = [call_tool(world.ctx(f"probe-{i}"), "verify_identity", wrong)
               for i in range(5)]
    assert [r.status for r in results] == ["failed"] * 4 + ["locked"]
    # The real owner, in a new conversation, is now also refused online until the lock expires...
    owner = world.ctx("owner")
    assert call_tool(owner, "verify_identity", {"account_no": ACCOUNT_B, "last4": "9000"}).status == "locked"
    # ...and other accounts are not affected.
    other = call_tool(world.ctx("other"), "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    assert other.status == "verified"
    # After the lock window the owner gets in.
    later = world.ctx("owner-later", clock=lambda: NOW + timedelta(minutes=61))
    owner_again = call_tool(later, "verify_identity", {"account_no": ACCOUNT_B, "last4": "9000"})
    assert owner_again.status == "verified"


def test_nonexistent_accounts_are_throttled_like_real_ones(world: World) -> None:
    ghost = "440188888888"
    results = [call_tool(world.ctx(f"g-{i}"), "verify_identity", {"account_no": ghost, "last4": "0000"})
               for i in range(5)]
    assert results[-1].status == "locked"


def test_wechat_openid_verifies_only_on_wechat_with_the_envelope_identity(world: World) -> None:
    ctx = world.ctx("wx-1", channel="wechat", identity="openid-A")
    result = call_tool(ctx, "verify_identity", {"method": "wechat_openid"})
    assert result.status == "verified" and result.account_no == ACCOUNT_A
    # The same request on the web channel is refused: the openid must come from WeChat itself.
    web = call_tool(world.ctx("web-1"), "verify_identity", {"method": "wechat_openid"})
    assert web.status == "invalid_input" and web.field == "method"
    unbound = call_tool(world.ctx("wx-2", channel="wechat", identity="openid-new"), "verify_identity",
                        {"method": "wechat_openid"})
    assert unbound.status == "not_bound"


def test_hotline_needs_the_registered_caller_and_the_road_of_the_address(world: World) -> None:
    ok = call_tool(world.ctx("ivr-1", channel="ivr", identity="+8613800138000"), "verify_identity",
                   {"method": "hotline", "check_answer": "体育西路"})
    assert ok.status == "verified" and ok.account_no == ACCOUNT_A
    district_only = call_tool(world.ctx("ivr-2", channel="ivr", identity="13800138000"), "verify_identity",
                              {"method": "hotline", "check_answer": "天河区"})
    assert district_only.status == "failed"
    stranger = call_tool(world.ctx("ivr-3", channel="ivr", identity="13700000000"), "verify_identity",
                         {"method": "hotline", "check_answer": "体育西路"})
    assert stranger.status == "failed"


def test_bind_wechat_after_verification(world: World) -> None:
    ctx = world.ctx("wx-bind", channel="wechat", identity="openid-B")
    assert call_tool(ctx, "bind_wechat", {}).status == "needs_verification"
    assert call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_B, "last4": "5678"}).status == "verified"
    assert call_tool(ctx, "bind_wechat", {}).status == "bound"
    assert call_tool(ctx, "bind_wechat", {}).status == "already_bound"
    # Now the openid alone verifies B in a new conversation.
    later = world.ctx("wx-later", channel="wechat", identity="openid-B")
    assert call_tool(later, "verify_identity", {"method": "wechat_openid"}).account_no == ACCOUNT_B
    # openid-A is A's: binding it to B is refused.
    other = world.ctx("wx-steal", channel="wechat", identity="openid-A")
    call_tool(other, "verify_identity", {"account_no": ACCOUNT_B, "last4": "5678"})
    assert call_tool(other, "bind_wechat", {}).status == "refused"


def test_attempts_are_recorded_and_secrets_are_not_audited(world: World) -> None:
    call_tool(world.ctx("audit-v"), "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    from tools.models import AuditEvent

    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IdentityAttempt)) == 1
        event = session.scalar(select(AuditEvent).where(AuditEvent.tool == "verify_identity"))
        assert event is not None and event.arguments["last4"] == "***"
        assert event.arguments["account_no"] == ACCOUNT_A and event.status == "verified"
        assert event.account_no == ACCOUNT_A  # the principal after the call


def test_bad_account_number_names_the_field(world: World) -> None:
    result = call_tool(world.ctx(), "verify_identity", {"account_no": "12345", "last4": "8000"})
    assert result.status == "invalid_input" and result.field == "account_no"


def test_hotline_caller_with_two_accounts_must_say_which(world: World) -> None:
    from tests.tools.factories import add_customer

    with world.sessions() as session:
        add_customer(session, "440100000009", phone="13800138000", address="广州市天河区天河路 583 号")
        session.commit()
    ctx = world.ctx("ivr-two", channel="ivr", identity="13800138000")
    ask = call_tool(ctx, "verify_identity", {"method": "hotline", "check_answer": "体育西路"})
    assert ask.status == "invalid_input" and ask.field == "account_no"
    ok = call_tool(ctx, "verify_identity",
                   {"method": "hotline", "check_answer": "天河路", "account_no": "440100000009"})
    assert ok.status == "verified" and ok.account_no == "440100000009"


def test_digits_spoken_one_by_one_are_read(world: World) -> None:
    spoken = {"account_no": "四四零幺 零零零零 零零零幺", "last4": "八零零零"}
    assert call_tool(world.ctx("ivr-asr"), "verify_identity", spoken).status == "verified"
    mixed = call_tool(world.ctx("ivr-asr-2"), "verify_identity",
                      {"account_no": "四四零幺零零零零零零零幺号", "last4": "8000"})
    assert mixed.status == "invalid_input" and mixed.field == "account_no"


def test_a_verification_expires_for_tool_calls(world: World) -> None:
    clock = {"now": NOW}
    ctx = world.ctx("expiry", clock=lambda: clock["now"])
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    assert call_tool(ctx, "lookup_bill", {}).status == "ok"
    clock["now"] = NOW + timedelta(minutes=30)
    assert call_tool(ctx, "lookup_bill", {}).status == "needs_verification"
    assert ctx.principal is None


def test_verifying_again_in_a_conversation_replaces_its_stored_principal(world: World) -> None:
    # The stored session row is updated in place (one row per conversation), not duplicated.
    first = world.ctx()
    assert call_tool(first, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"}).status == "verified"
    later = world.ctx(clock=lambda: NOW + timedelta(minutes=5))
    assert call_tool(later, "verify_identity", {"account_no": ACCOUNT_B, "last4": "9000"}).status == "verified"
    with world.sessions() as session:
        rows = session.scalars(select(VerifiedSession).where(VerifiedSession.conversation_id == "conv-1")).all()
    assert [(r.account_no, r.verified_at) for r in rows] == [(ACCOUNT_B, NOW + timedelta(minutes=5))]
    restored = world.ctx(clock=lambda: NOW + timedelta(minutes=6)).restore_principal()
    assert restored is not None and restored.account_no == ACCOUNT_B
    assert restored.expires_at == NOW + timedelta(minutes=35)


def test_the_same_answer_in_a_message_run_again_is_one_attempt(world: World) -> None:
    """`message_id` on the context (the client's id of the message): the same wrong answer in the
    same message reuses its attempt and its count; another answer in it, or another message, is a
    new try. Without a message id every call counts (a tool caller with no ids loses nothing)."""
    wrong = {"account_no": ACCOUNT_A, "last4": "1111"}
    first = call_tool(world.ctx("resend", message_id="w-1"), "verify_identity", wrong)
    rerun = call_tool(world.ctx("resend", message_id="w-1"), "verify_identity", wrong)
    assert (first.status, first.attempts_left, rerun.status, rerun.attempts_left) == ("failed", 2, "failed", 2)
    other_answer = call_tool(world.ctx("resend", message_id="w-1"), "verify_identity",
                             {**wrong, "last4": "2222"})
    assert other_answer.attempts_left == 1
    rerun_other = call_tool(world.ctx("resend", message_id="w-1"), "verify_identity", {**wrong, "last4": "2222"})
    assert rerun_other.status == "failed" and rerun_other.attempts_left == 1  # not locked by the re-run
    third = call_tool(world.ctx("resend", message_id="w-2"), "verify_identity", wrong)
    assert third.status == "locked"
    again_locked = call_tool(world.ctx("resend", message_id="w-2"), "verify_identity", wrong)
    assert again_locked.status == "locked" and again_locked.handoff_no == third.handoff_no
    with world.sessions() as session:
        rows = session.execute(select(IdentityAttempt.message_key).where(
            IdentityAttempt.conversation_id == "resend").order_by(IdentityAttempt.id)).scalars().all()
        locks = session.scalar(select(func.count()).select_from(IdentityLock).where(
            IdentityLock.key == "resend"))
    assert len(rows) == 3 and len(set(rows)) == 3 and all(len(key) == 32 for key in rows)
    assert "1111" not in "".join(rows) and locks == 1
    other_account = {**wrong, "account_no": ACCOUNT_B}  # A has three wrong answers against it now
    plain = [call_tool(world.ctx("no-ids"), "verify_identity", other_account).attempts_left for _ in range(2)]
    assert plain == [2, 1]
