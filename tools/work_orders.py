"""Opening a customer work order (dispute, complaint) with a fresh number, safe against a race.

Numbers follow billing's `next_work_order_no` ('WO' + local day + sequence); two conversations
opening one at the same moment collide on the unique number and the loser takes the next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_core.models import WorkOrder, next_work_order_no


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
        except IntegrityError:  # the savepoint rollback already dropped `order`
            continue
    raise RuntimeError("could not allocate a work-order number")
