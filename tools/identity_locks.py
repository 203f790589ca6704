"""The identity lock-outs in force, as staff see them (the assist API and the console).

`verify_identity` writes the locks; this module only reads them, with what led to each: how many
wrong answers, from which channels and how many conversations, and how many right answers the
lock refused since (usually the real owner, who then needs a person). Staff may see the 户号;
customers never reach this module. A hotline caller number kept as a claim (`ani:…`) is shown
masked like every phone number.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from knowledge_base.personal_numbers import mask_personal_numbers
from tools.models import IdentityAttempt, IdentityLock, LockScope
from tools.service_policy import ServicePolicy, load_policy

class IdentityLockView(BaseModel):
    scope: LockScope
    key: str  # the claimed 户号, the conversation id, or a masked caller number (ani:138****8000)
    account_no: str | None  # the claimed 户号 of an account lock (as claimed: it may not exist)
    customer_exists: bool | None  # account locks: whether the claimed 户号 is a customer
    locked_at: datetime
    locked_until: datetime
    reason: str
    wrong_answers: int  # that led to the lock and came during it
    refused_right_answers: int  # right answers the lock refused
    channels: list[str]  # the channels the wrong answers came from
    conversations: int  # how many conversations they came from


def mask_claim(key: str) -> str:
    """A hotline caller number kept as a claim, masked: ani:13800138000 → ani:138****8000."""
    return mask_personal_numbers(key, landlines=True) if key.startswith("ani:") else key


def _view(session: Session, lock: IdentityLock, policy: ServicePolicy) -> IdentityLockView:
    attempt = IdentityAttempt
    if lock.scope == LockScope.ACCOUNT:
        since = lock.locked_at - timedelta(minutes=policy.verification.account_window_minutes)
        where = [attempt.claimed_account == lock.key, attempt.attempted_at > since,
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
        scope=lock.scope, key=mask_claim(lock.key), account_no=account, customer_exists=exists,
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
