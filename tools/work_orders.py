"""Opening a customer work order (dispute, complaint) with a fresh number, safe against a race.

Numbers follow billing's `next_work_order_no` ('WO' + local day + sequence); two conversations
opening one at the same moment collide on the unique number and the loser takes the next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_core.db.models import WorkOrder, next_work_order_no


def add_work_order(session: Session, local_now: datetime, **fields: Any) -> WorkOrder:
    """Insert a work order (flushed, not committed) under the next free number of the day.

    `sla_due_at` of a customer work order is the first promise made to the customer (the contact
    deadline); the later answer deadline is in `payload`.
    """
    for _ in range(5):
        order = WorkOrder(no=next_work_order_no(session, local_now.date()), **fields)
        try:
            with session.begin_nested():
                session.add(order)
            return order
        except IntegrityError as exc:  # the savepoint rollback already dropped `order`
            if is_open_dispute_clash(exc):
                raise  # not a number collision: the bill already has an open dispute
            continue
    raise RuntimeError("could not allocate a work-order number")


def is_open_dispute_clash(exc: IntegrityError) -> bool:
    """Whether the database refused a second open dispute for one bill (the partial unique index
    `uq_work_orders_one_open_dispute_per_bill`; SQLite names the column, PostgreSQL the index)."""
    message = str(exc.orig)
    return "one_open_dispute_per_bill" in message or "work_orders.bill_id" in message
