"""The identity lock-outs in force, as staff see them (the assist API and the console), and
staff lifting one early.

`verify_identity` writes the locks; this module reads them, with what led to each: how many
wrong answers, from which channels and how many conversations, and how many right answers the
lock refused since (usually the real owner, who then needs a person). Staff may see the 户号;
customers never reach this module. A hotline caller number kept as a claim (`ani:…`) is shown
masked like every phone number.

`lift_identity_lock` is for a `StaffPrincipal` only (a customer's `ToolContext` has no way in,
and it is no tool of the registry, so no model can call it): once the customer has proved who
they are to a person, staff end the lock with a reason. Nothing is deleted — the lock row stays
(the repeat-doubling rule still counts it) and the wrong answers stay on record — but those made
before the lift no longer count towards the same 户号 / conversation / source, or the next slip
would lock the customer out again at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from knowledge_base.personal_numbers import mask_personal_numbers
from tools.models import IdentityAttempt, IdentityLock, IdentityLockLift, LockScope
from tools.service_policy import ServicePolicy, load_policy
from tools.verify_identity import serialize_checks

LIFT_REASON_MAX = 200  # the column's length


class IdentityLockView(BaseModel):
    id: int  # what staff name to lift it
    scope: LockScope
    # the claimed 户号, the conversation id, a masked caller number (ani:138****8000), or a source
    # (`web:203.0.113.7`, `wechat:o_…`, `ivr:138****8000`)
    key: str
    account_no: str | None  # the claimed 户号 of an account lock (as claimed: it may not exist)
    customer_exists: bool | None  # account locks: whether the claimed 户号 is a customer
    locked_at: datetime
    locked_until: datetime
    reason: str
    wrong_answers: int  # that led to the lock and came during it
    refused_right_answers: int  # right answers the lock refused
    channels: list[str]  # the channels the wrong answers came from
    conversations: int  # how many conversations they came from


def mask_claim(key: str, scope: LockScope = LockScope.ACCOUNT) -> str:
    """A hotline caller number kept as a claim or a source, masked: ani:13800138000 →
    ani:138****8000, ivr:13800138000 → ivr:138****8000."""
    return mask_personal_numbers(key, landlines=True) if key.startswith("ani:") or scope == LockScope.SOURCE else key


def _view(session: Session, lock: IdentityLock, policy: ServicePolicy) -> IdentityLockView:
    attempt = IdentityAttempt
    if lock.scope == LockScope.ACCOUNT:
        since = lock.locked_at - timedelta(minutes=policy.verification.account_window_minutes)
        where = [attempt.claimed_account == lock.key, attempt.attempted_at > since,
                 attempt.attempted_at <= lock.locked_until]
    elif lock.scope == LockScope.SOURCE:
        since = lock.locked_at - timedelta(minutes=policy.verification.source_window_minutes)
        where = [attempt.source == lock.key, attempt.attempted_at > since,
                 attempt.attempted_at <= lock.locked_until]
    else:
        where = [attempt.conversation_id == lock.key]
    rows = session.execute(
        select(attempt.channel, attempt.conversation_id, attempt.refused_by_lock, func.count())
        .where(*where, attempt.success.is_(False))
        .group_by(attempt.channel, attempt.conversation_id, attempt.refused_by_lock)).all()
    account = lock.key if lock.scope == LockScope.ACCOUNT and re.fullmatch(r"\d{12}", lock.key) else None
    exists = None
    if lock.scope == LockScope.ACCOUNT:
        exists = account is not None and session.scalar(
            select(Customer.id).where(Customer.account_no == account)) is not None
    return IdentityLockView(
        id=lock.id, scope=lock.scope, key=mask_claim(lock.key, lock.scope), account_no=account, customer_exists=exists,
        locked_at=lock.locked_at, locked_until=lock.locked_until, reason=lock.reason,
        wrong_answers=sum(n for _, _, refused, n in rows if not refused),
        refused_right_answers=sum(n for _, _, refused, n in rows if refused),
        channels=sorted({channel for channel, _, refused, _ in rows if not refused}),
        conversations=len({conversation for _, conversation, refused, _ in rows if not refused}),
    )


def active_identity_locks(session: Session, now: datetime, *, scope: LockScope | None = None,
                          limit: int = 100, policy: ServicePolicy | None = None) -> list[IdentityLockView]:
    """The locks in force at `now`, the latest first; one per locked 户号 or conversation."""
    query = select(IdentityLock).where(IdentityLock.locked_until > now).order_by(IdentityLock.locked_at.desc())
    if scope is not None:
        query = query.where(IdentityLock.scope == scope)
    seen: set[tuple[str, str]] = set()
    locks: list[IdentityLock] = []
    for lock in session.scalars(query):
        if (lock.scope, lock.key) in seen:
            continue
        seen.add((lock.scope, lock.key))
        locks.append(lock)
        if len(locks) >= limit:
            break
    chosen = policy or load_policy()
    return [_view(session, lock, chosen) for lock in locks]


def account_identity_lock(session: Session, account_no: str, now: datetime,
                          policy: ServicePolicy | None = None) -> IdentityLockView | None:
    """The lock on one 户号 in force at `now` (for the customer's card), or None."""
    lock = session.scalar(
        select(IdentityLock).where(IdentityLock.scope == LockScope.ACCOUNT, IdentityLock.key == account_no,
                                   IdentityLock.locked_until > now)
        .order_by(IdentityLock.locked_until.desc()).limit(1))
    return None if lock is None else _view(session, lock, policy or load_policy())


@dataclass(frozen=True)
class StaffPrincipal:
    """A staff member, as the staff console's authentication names them (never a customer's
    conversation): the only principal that may lift a lock."""

    staff_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.staff_id, str) or not self.staff_id.strip() or len(self.staff_id) > 64:
            raise ValueError("staff_id: 需要坐席编号（1–64个字符）")


class LiftInputError(ValueError):
    """A lift request refused before anything is written; the message names the field."""


class LockNotFound(LookupError):
    """No lock with that id."""


class LockAlreadyEnded(Exception):
    """The lock expired or was lifted already; nothing changed."""

    def __init__(self, lock_id: int, ended_at: datetime) -> None:
        super().__init__(f"lock_id: 锁定 {lock_id} 已于 {ended_at.isoformat()} 结束")
        self.ended_at = ended_at


class LockLifted(BaseModel):
    lock_id: int
    scope: LockScope
    key: str  # masked like the list's
    lifted_at: datetime
    lifted_by: str
    reason: str
    was_locked_until: datetime


def lift_identity_lock(session: Session, staff: StaffPrincipal, lock_id: int, reason: str,
                       now: datetime) -> LockLifted:
    """End lock `lock_id` at `now` for `staff`, with `reason`; commits.

    Raises `LiftInputError` (bad reason / not staff), `LockNotFound`, `LockAlreadyEnded`.
    Serialised with the identity checks of the same key, so a guess in flight is either counted
    before the lift (and then forgiven with the rest) or checked after it.
    """
    if not isinstance(staff, StaffPrincipal):
        raise LiftInputError("staff: 只有坐席可以解除锁定")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise LiftInputError("reason: 请填写解除原因（如已在营业厅核验身份证件）")
    if len(reason) > LIFT_REASON_MAX:
        raise LiftInputError(f"reason: 解除原因最多 {LIFT_REASON_MAX} 个字")
    lock = session.get(IdentityLock, lock_id)
    if lock is None:
        raise LockNotFound(f"lock_id: 没有编号为 {lock_id} 的锁定")
    scope, key, until = lock.scope, lock.key, lock.locked_until
    if until <= now:
        raise LockAlreadyEnded(lock_id, until)
    serialize_checks(session, [f"{scope}:{key}"])
    # The first write (SQLite: taken under the database's write lock); only one of two staff
    # lifting the same lock at once moves it.
    moved = session.execute(update(IdentityLock).where(IdentityLock.id == lock_id, IdentityLock.locked_until > now)
                            .values(locked_until=now).execution_options(synchronize_session=False))
    if moved.rowcount != 1:
        session.rollback()
        ended = session.scalar(select(IdentityLock.locked_until).where(IdentityLock.id == lock_id))
        raise LockAlreadyEnded(lock_id, ended or now)
    floor = session.scalar(select(func.coalesce(func.max(IdentityAttempt.id), 0))) or 0
    session.add(IdentityLockLift(lock_id=lock_id, scope=scope, key=key, lifted_at=now, lifted_by=staff.staff_id,
                                 reason=reason, was_locked_until=until, attempts_before=floor))
    session.commit()
    return LockLifted(lock_id=lock_id, scope=scope, key=mask_claim(key, scope), lifted_at=now, lifted_by=staff.staff_id,
                      reason=reason, was_locked_until=until)
