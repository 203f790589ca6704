"""缴费提醒: bills still owed that fall due within the policy's days get one notice per channel, with
the amount still owed as the billing core counts it; a second pass queues nothing new."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.operations_models import OutboxNotification
from billing_core.operations.dunning_store import queue_due_soon
from tests.billing.test_dunning import DUE, seed_overdue


def test_due_soon_reminders_once_per_bill_and_channel(session: Session) -> None:
    ids = seed_overdue(session)  # all due 2026-08-17; "part" has 100.00 of 180.00 paid, "settled" is paid
    assert queue_due_soon(session, date(2026, 8, 10)) == 0  # 7 days ahead: beyond the 3-day window
    queued = queue_due_soon(session, date(2026, 8, 15))
    session.commit()
    rows = list(session.scalars(select(OutboxNotification).order_by(OutboxNotification.id)))
    assert queued == len(rows) == 4
    assert sorted((r.bill_id, r.channel.value) for r in rows) == sorted(
        [(ids["home"], "sms"), (ids["home"], "wechat_template"), (ids["shop"], "sms"), (ids["part"], "sms")])
    part = next(r for r in rows if r.bill_id == ids["part"])
    assert part.kind == "due_soon" and part.template == "due_soon_v1"
    assert part.payload["amount"] == "80.00" and Decimal(part.payload["amount"]) == Decimal("180.00") - Decimal("100.00")
    assert "尚欠80.00元" in part.body and DUE.isoformat() in part.body and part.payload["days_left"] == 2
    assert queue_due_soon(session, date(2026, 8, 16)) == 0  # already queued
    assert queue_due_soon(session, date(2026, 8, 18)) == 0  # overdue now: dunning's turn
