"""Opening work orders from the billing operations (review, refund, reconciliation, dunning call).

Numbers follow `models.next_work_order_no` ('WO' + day + sequence); a batch (a cycle may open
hundreds of reviews) asks the database once and counts on from there inside its transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_core.db.bulk import bulk_insert
from billing_core.db.models import WorkOrder, WorkOrderKind, WorkOrderPriority, WorkOrderStatus, next_work_order_no

# How long each kind may stay open (hours): reviews must clear before bills go out late.
SLA_HOURS = {
    WorkOrderKind.REVIEW: 48,
    WorkOrderKind.REFUND: 120,
    WorkOrderKind.RECONCILIATION: 72,
    WorkOrderKind.DUNNING_CALL: 72,
}


class WorkOrderNumbers:
    """Hands out consecutive work-order numbers of one day within one transaction."""

    def __init__(self, session: Session, on: date) -> None:
        first = next_work_order_no(session, on)
        self._prefix = first[:10]
        # The sequence is 4 digits but may run past 9999 on a day with a very large cycle; a
        # string max() would then pick '…9999' over '…10000', so take the longest number first.
        last = session.scalar(
            select(WorkOrder.no).where(WorkOrder.no.like(f"{self._prefix}%"))
            .order_by(func.length(WorkOrder.no).desc(), WorkOrder.no.desc()).limit(1)
        )
        self._next = int(last[len(self._prefix):]) + 1 if last else int(first[10:])

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        number = f"{self._prefix}{self._next:04d}"
        self._next += 1
        return number


def work_order_row(
    number: str,
    kind: WorkOrderKind,
    title: str,
    description: str,
    *,
    account_no: str | None = None,
    bill_id: int | None = None,
    period: str | None = None,
    priority: WorkOrderPriority = WorkOrderPriority.NORMAL,
    channel: str = "system",
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A `work_orders` row as a dict, for bulk inserts."""
    now = now or datetime.now(UTC)
    return {
        "no": number,
        "kind": kind,
        "account_no": account_no,
        "bill_id": bill_id,
        "period": period,
        "status": WorkOrderStatus.OPEN,
        "priority": priority,
        "title": title[:200],
        "description": description,
        "channel": channel,
        "sla_due_at": now + timedelta(hours=SLA_HOURS.get(kind, 72)),
        "created_at": now,
        "payload": payload or {},
        "contact": None,
        "resolved_at": None,
    }


def open_work_orders(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert work-order rows (numbers already set); returns number → id."""
    if not rows:
        return {}
    bulk_insert(session, WorkOrder.__table__, rows)
    numbers = [row["no"] for row in rows]
    ids: dict[str, int] = {}
    for start in range(0, len(numbers), 1000):
        chunk = numbers[start : start + 1000]
        ids.update((row[0], row[1]) for row in session.execute(select(WorkOrder.no, WorkOrder.id).where(WorkOrder.no.in_(chunk))))
    return ids


def open_work_order(session: Session, kind: WorkOrderKind, title: str, description: str, **kw: Any) -> WorkOrder:
    """Open one work order now and return it (flushed, so it has an id and a number)."""
    today = datetime.now(UTC).date()
    number = next(WorkOrderNumbers(session, today))
    row = work_order_row(number, kind, title, description, **kw)
    order = WorkOrder(**row)
    session.add(order)
    session.flush()
    return order
