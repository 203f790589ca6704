"""The outbox's delivery state machine: claim a batch under a lease, record what each send did.

Delivery itself (WeChat, SMS, e-mail) is the channels layer's; this module only moves rows:

- `claim` takes up to N due rows for one worker. On PostgreSQL it selects them `FOR UPDATE
  SKIP LOCKED`, so concurrent workers never wait on or take each other's rows; on SQLite (one
  writer at a time) a single `UPDATE … WHERE id IN (SELECT …)` is the claim. Either way a claim is
  a lease (`claimed_until`): rows of a worker that died are taken again once it has passed, and
  `attempts` counts the claim, so a message that crashes its worker every time still gives up.
- `record` writes the outcomes of a batch in one transaction, guarded by the claim token, so a
  worker whose lease ran out cannot overwrite a row another worker now owns.

At-least-once by construction (never lost); exactly once where the provider de-duplicates on the
idempotency key the sender passes (`dedupe_key`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from billing_core.db.engine import utc_now
from billing_core.db.models import Customer
from billing_core.operations.notifications import channel_rows
from billing_core.db.operations_models import (
    NotificationChannel,
    NotificationOptIn,
    NotificationStatus,
    OutboxNotification,
)

T = OutboxNotification.__table__


@dataclass(frozen=True)
class ClaimedMessage:
    """One claimed outbox row, as the senders see it (the text and figures the billing core wrote)."""

    id: int
    dedupe_key: str
    channel: str
    kind: str
    account_no: str
    recipient: str | None
    template: str
    body: str
    payload: dict[str, Any]
    attempts: int
    claim_token: str
    bill_id: int | None = None


@dataclass
class Outcome:
    """What happened to one claimed message.

    `status`: "sent", "retry" (back off until `next_attempt_at`), "failed" (for good), "skipped",
    or "deferred" (policy: quiet hours / daily cap; the attempt is given back).
    """

    message_id: int
    claim_token: str
    status: str
    provider_message_id: str | None = None
    provider_response: dict[str, Any] | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    fallback: dict[str, Any] | None = field(default=None)  # a row to queue instead (WeChat → SMS)


def _due(now: datetime) -> Any:
    return and_(
        T.c.status == NotificationStatus.PENDING.value,
        or_(T.c.next_attempt_at.is_(None), T.c.next_attempt_at <= now),
        or_(T.c.claimed_until.is_(None), T.c.claimed_until < now),
    )


def claim(session: Session, limit: int, lease_seconds: float, channels: Iterable[str] | None = None,
          now: datetime | None = None) -> list[ClaimedMessage]:
    """Claim up to `limit` due rows (oldest first) of `channels` (default all) for `lease_seconds`,
    and commit the claim."""
    now = now or utc_now()
    token = str(uuid.uuid4())
    values = {"claim_token": token, "claimed_until": now + timedelta(seconds=lease_seconds),
              "attempts": T.c.attempts + 1}
    due = _due(now) if channels is None else and_(_due(now), T.c.channel.in_(list(channels)))
    chosen = select(T.c.id).where(due).order_by(T.c.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(chosen.with_for_update(skip_locked=True)))
        if ids:
            session.execute(update(T).where(T.c.id.in_(ids)).values(**values))
    else:  # SQLite: the statement that claims is the transaction's first write, so it takes the lock
        session.execute(update(T).where(T.c.id.in_(chosen.scalar_subquery())).values(**values))
    rows = session.execute(select(T).where(T.c.claim_token == token).order_by(T.c.id)).mappings().all()
    session.commit()
    return [
        ClaimedMessage(id=r["id"], dedupe_key=r["dedupe_key"], channel=r["channel"], kind=r["kind"],
                       account_no=r["account_no"], recipient=r["recipient"], template=r["template"],
                       body=r["body"], payload=dict(r["payload"] or {}), attempts=r["attempts"],
                       claim_token=token, bill_id=r["bill_id"])
        for r in rows
    ]


def extend(session: Session, token: str, lease_seconds: float) -> None:
    """Renew a claim's lease while its batch is still being sent (a slow provider)."""
    session.execute(update(T).where(T.c.claim_token == token)
                    .values(claimed_until=utc_now() + timedelta(seconds=lease_seconds)))
    session.commit()


_STATUS = {"sent": NotificationStatus.SENT, "retry": NotificationStatus.PENDING,
           "deferred": NotificationStatus.PENDING, "failed": NotificationStatus.FAILED,
           "skipped": NotificationStatus.SKIPPED}


def record(session: Session, outcomes: Sequence[Outcome], now: datetime | None = None) -> int:
    """Write the outcomes in one transaction (and queue fallbacks); returns rows updated.

    A "sent" outcome is written even if the lease ran out meanwhile (the message *was* sent), but
    only onto a row still pending; others only onto a row still holding this claim.
    """
    if not outcomes:
        return 0
    now = now or utc_now()
    params = []
    for o in outcomes:
        params.append({
            "b_id": o.message_id, "b_token": o.claim_token, "b_sent": o.status == "sent",
            "status": _STATUS[o.status].value,
            "sent_at": now if o.status == "sent" else None,
            "provider_message_id": o.provider_message_id, "provider_response": o.provider_response,
            "last_error": o.error, "next_attempt_at": o.next_attempt_at,
            "give_back": 1 if o.status == "deferred" else 0,
        })
    statement = (
        update(T)
        .where(T.c.id == bindparam("b_id"), T.c.status == NotificationStatus.PENDING.value,
               or_(T.c.claim_token == bindparam("b_token"), bindparam("b_sent")))
        .values(status=bindparam("status"), sent_at=bindparam("sent_at"),
                provider_message_id=bindparam("provider_message_id"),
                provider_response=bindparam("provider_response"), last_error=bindparam("last_error"),
                next_attempt_at=bindparam("next_attempt_at"), claim_token=None, claimed_until=None,
                attempts=T.c.attempts - bindparam("give_back"))
    )
    result = session.execute(statement, params)
    fallbacks = [o.fallback for o in outcomes if o.fallback]
    if fallbacks:
        queue_new(session, fallbacks)
    session.commit()
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(params)


def queue_new(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert outbox rows whose `dedupe_key` is not there yet (a second queueing is a no-op)."""
    rows = list(rows)
    if not rows:
        return 0
    existing = set(session.scalars(select(T.c.dedupe_key).where(T.c.dedupe_key.in_([r["dedupe_key"] for r in rows]))))
    fresh = [r for r in rows if r["dedupe_key"] not in existing]
    if fresh:
        session.execute(insert(T), fresh)
    return len(fresh)


def fallback_sms_row(message: ClaimedMessage, phone: str) -> dict[str, Any]:
    """The SMS twin of a WeChat message the customer can no longer receive (unsubscribed).

    Its key is the one the cycle would have given an SMS of the same notice, so when the policy
    already queued an SMS for it the twin is not queued twice."""
    stem = message.dedupe_key.removesuffix(":" + NotificationChannel.WECHAT_TEMPLATE.value)
    sms = NotificationChannel.SMS.value
    return channel_rows(stem, message.kind, message.template, message.account_no, message.bill_id, message.body,
                        message.payload, [sms], {sms: phone})[0]


def phones(session: Session, account_nos: Iterable[str]) -> dict[str, str]:
    """Account → phone on file (for the SMS fallback)."""
    wanted = set(account_nos)
    if not wanted:
        return {}
    rows = session.execute(select(Customer.account_no, Customer.phone)
                           .where(Customer.account_no.in_(wanted), Customer.phone.is_not(None)))
    return {account: phone for account, phone in rows}


def sent_since(session: Session, account_nos: Iterable[str], since: datetime) -> dict[str, int]:
    """Messages sent to each account since `since` (the per-customer daily cap)."""
    wanted = set(account_nos)
    if not wanted:
        return {}
    rows = session.execute(
        select(T.c.account_no, func.count()).where(
            T.c.account_no.in_(wanted), T.c.status == NotificationStatus.SENT.value, T.c.sent_at >= since)
        .group_by(T.c.account_no))
    return {account: count for account, count in rows}


def opted_in(session: Session, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of the (account, kind) pairs, those the customer opted in to."""
    pairs = set(pairs)
    if not pairs:
        return set()
    accounts = {a for a, _ in pairs}
    rows = session.execute(select(NotificationOptIn.account_no, NotificationOptIn.kind)
                           .where(NotificationOptIn.account_no.in_(accounts)))
    return {(a, k) for a, k in rows if (a, k) in pairs}


def opt_in(session: Session, account_no: str, kind: str, source: str = "customer") -> bool:
    """Record a customer's consent to a notice kind; False when it was already there."""
    found = session.scalar(select(NotificationOptIn.id).where(
        NotificationOptIn.account_no == account_no, NotificationOptIn.kind == kind))
    if found is not None:
        return False
    session.add(NotificationOptIn(account_no=account_no, kind=kind, source=source))
    session.flush()
    return True


def outstanding(session: Session, channels: Iterable[str] | None = None, now: datetime | None = None) -> int:
    """Pending rows that are due now or that some worker holds a live lease on, counted at one
    instant: a draining worker stops only at zero. Two queries (an empty claim, then a count of
    live leases) would race a lease that ends between them: its rows are neither claimed nor
    leased, and the last worker would exit leaving them pending."""
    now = now or utc_now()
    leased = and_(T.c.status == NotificationStatus.PENDING.value, T.c.claimed_until >= now)
    condition = or_(leased, _due(now))
    if channels is not None:
        condition = and_(condition, T.c.channel.in_(list(channels)))
    return session.scalar(select(func.count()).select_from(T).where(condition)) or 0


def counts(session: Session) -> dict[str, int]:
    """Rows per status (the `notify status` command)."""
    return {status: n for status, n in session.execute(select(T.c.status, func.count()).group_by(T.c.status))}
