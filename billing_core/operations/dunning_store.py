"""A dunning pass over the database (T/CI 1281 §7.9): late fees, reminders, agent call tasks.

For each issued bill still owed past its due date: the late fee as of the day is recorded, and
the strongest tier reached is acted on once — reminder messages to the outbox, or a call task
(work order) for an agent. Running the pass twice on the same day changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from billing_core.bill_types import LATE_FEE_LINE_CODE
from billing_core.operations.dunning import days_overdue, late_fee, select_tier
from billing_core.db.models import Bill, BillLine, BillStatus, Customer, Payment, PaymentStatus, WorkOrderKind, WorkOrderPriority
from billing_core.money import ZERO
from billing_core.operations.notifications import due_soon_rows, dunning_rows, recipients
from billing_core.db.operations_models import DunningAction, LateFeeAccrual, OutboxNotification
from billing_core.operations.policy import OperationsPolicy, load_policy
from billing_core.operations.work_orders import WorkOrderNumbers, open_work_orders, work_order_row

OWED_STATUSES = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID)


@dataclass
class DunningResult:
    as_of: date
    overdue_bills: int = 0
    late_fees: Decimal = ZERO
    actions: dict[str, int] = field(default_factory=dict)
    notifications: int = 0
    call_tasks: int = 0

    def summary(self) -> str:
        acts = "，".join(f"{tier} {n}" for tier, n in sorted(self.actions.items())) or "无新动作"
        return (
            f"截至 {self.as_of}：逾期账单 {self.overdue_bills} 张，违约金合计 {self.late_fees} 元；"
            f"催费动作：{acts}；通知 {self.notifications} 条，外呼工单 {self.call_tasks} 张。"
        )


def run_dunning(session: Session, as_of: date, policy: OperationsPolicy | None = None) -> DunningResult:
    """One pass as of `as_of` (the caller commits)."""
    policy = policy or load_policy()
    result = DunningResult(as_of)
    paid = (
        select(Payment.bill_id, func.sum(Payment.amount).label("paid"))
        .where(Payment.status == PaymentStatus.SUCCEEDED, Payment.bill_id.is_not(None))
        .group_by(Payment.bill_id)
        .subquery()
    )
    # 违约金 lines an earlier overdue bill put on this one: a late fee is charged on the unpaid
    # electricity charges, never on an earlier late fee (no fee on a fee).
    fees_on_bill = (
        select(BillLine.bill_id, func.sum(BillLine.amount).label("fees"))
        .where(BillLine.code == LATE_FEE_LINE_CODE)
        .group_by(BillLine.bill_id)
        .subquery()
    )
    rows = session.execute(
        select(Bill.id, Bill.bill_no, Bill.period, Bill.amount, Bill.due_date, func.coalesce(paid.c.paid, 0),
               Customer.account_no, Customer.name, Customer.phone, Customer.wechat_openid, Customer.category,
               func.coalesce(fees_on_bill.c.fees, 0))
        .join(Customer, Customer.id == Bill.customer_id)
        .join(paid, paid.c.bill_id == Bill.id, isouter=True)
        .join(fees_on_bill, fees_on_bill.c.bill_id == Bill.id, isouter=True)
        .where(Bill.status.in_(OWED_STATUSES), Bill.due_date.is_not(None), Bill.due_date < as_of)
        .order_by(Bill.id)
    ).all()
    if not rows:
        return result
    bill_ids = [row[0] for row in rows]
    done = _done_actions(session, bill_ids)
    accrued = _accrued_today(session, bill_ids, as_of)
    numbers = WorkOrderNumbers(session, as_of)
    now = datetime.now(UTC)
    accruals: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    calls: list[tuple[dict[str, Any], int]] = []

    for (bill_id, bill_no, period, amount, due_date, paid_amount, account_no, name, phone, openid,
         category, fees) in rows:
        owed = max(Decimal(amount) - Decimal(paid_amount), ZERO)
        if owed == ZERO:
            continue
        result.overdue_bills += 1
        days = days_overdue(due_date, as_of)
        # Payments count against the electricity charges first, in the customer's favour.
        principal = max(Decimal(amount) - Decimal(fees) - Decimal(paid_amount), ZERO)
        fee = late_fee(principal, due_date, as_of, str(category), policy)
        result.late_fees += fee.amount
        if bill_id not in accrued and fee.amount > ZERO:
            accruals.append({"bill_id": bill_id, "as_of": as_of, "principal": principal, "days": fee.days,
                             "amount": fee.amount, "explanation": fee.explanation()})
        tier = select_tier(days, owed, policy)
        if tier is None or (bill_id, tier.code) in done:
            continue
        action = {"bill_id": bill_id, "tier": tier.code, "as_of": as_of, "days_overdue": days,
                  "amount_owed": owed, "late_fee": fee.amount, "work_order_id": None, "created_at": now}
        result.actions[tier.code] = result.actions.get(tier.code, 0) + 1
        if tier.work_order_kind:
            order = work_order_row(
                next(numbers), WorkOrderKind(tier.work_order_kind),
                f"催费外呼：{name} 户号 {account_no} 欠费 {owed} 元，逾期 {days} 天",
                f"账单 {bill_no}（{period}）应缴 {amount} 元，已缴 {paid_amount} 元，尚欠 {owed} 元；"
                f"{fee.explanation()} 请人工电话联系客户，联系电话 {phone or '无'}。",
                account_no=account_no, bill_id=bill_id, period=period, priority=WorkOrderPriority.HIGH,
                channel="dunning", now=now,
                payload={"tier": tier.code, "owed": str(owed), "late_fee": str(fee.amount), "days": days},
            )
            calls.append((order, len(actions)))
        outbox.extend(dunning_rows(
            bill_id=bill_id, bill_no=bill_no or "", account_no=account_no, name=name, period=period,
            tier=tier.code, owed=owed, late_fee=fee.amount, days=days, channels=tier.channels,
            reachable=recipients(phone, openid)))
        actions.append(action)

    order_ids = open_work_orders(session, [order for order, _ in calls])
    for order, index in calls:
        actions[index]["work_order_id"] = order_ids[order["no"]]
    if accruals:
        session.execute(insert(LateFeeAccrual.__table__), accruals)
    if actions:
        session.execute(insert(DunningAction.__table__), actions)
    if outbox:
        session.execute(insert(OutboxNotification.__table__), outbox)
    result.notifications = len(outbox)
    result.call_tasks = len(calls)
    session.flush()
    return result


def queue_due_soon(session: Session, as_of: date, policy: OperationsPolicy | None = None) -> int:
    """Queue 缴费提醒 for bills still owed that fall due within `issue.due_soon_days` after `as_of`
    (the outbox key makes a second pass, or a later day, queue nothing new). Returns rows queued."""
    from datetime import timedelta

    from billing_core.operations.outbox import queue_new

    policy = policy or load_policy()
    paid = (
        select(Payment.bill_id, func.sum(Payment.amount).label("paid"))
        .where(Payment.status == PaymentStatus.SUCCEEDED, Payment.bill_id.is_not(None))
        .group_by(Payment.bill_id)
        .subquery()
    )
    horizon = as_of + timedelta(days=policy.issue.due_soon_days)
    rows = session.execute(
        select(Bill.id, Bill.bill_no, Bill.period, Bill.amount, Bill.due_date, func.coalesce(paid.c.paid, 0),
               Customer.account_no, Customer.name, Customer.phone, Customer.wechat_openid)
        .join(Customer, Customer.id == Bill.customer_id)
        .join(paid, paid.c.bill_id == Bill.id, isouter=True)
        .where(Bill.status.in_(OWED_STATUSES), Bill.due_date.is_not(None), Bill.due_date >= as_of,
               Bill.due_date <= horizon)
        .order_by(Bill.id)
    ).all()
    outbox: list[dict[str, Any]] = []
    for bill_id, bill_no, period, amount, due_date, paid_amount, account_no, name, phone, openid in rows:
        owed = max(Decimal(amount) - Decimal(paid_amount), ZERO)
        if owed == ZERO:
            continue
        outbox.extend(due_soon_rows(
            bill_id=bill_id, bill_no=bill_no or "", account_no=account_no, name=name, period=period, owed=owed,
            due_date=due_date, days_left=(due_date - as_of).days, channels=policy.issue.due_soon_channels,
            reachable=recipients(phone, openid)))
    queued = queue_new(session, outbox)
    session.flush()
    return queued


def _done_actions(session: Session, bill_ids: list[int]) -> set[tuple[int, str]]:
    done: set[tuple[int, str]] = set()
    for start in range(0, len(bill_ids), 1000):
        rows = session.execute(select(DunningAction.bill_id, DunningAction.tier)
                               .where(DunningAction.bill_id.in_(bill_ids[start : start + 1000])))
        done |= {(row[0], row[1]) for row in rows}
    return done


def _accrued_today(session: Session, bill_ids: list[int], as_of: date) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(bill_ids), 1000):
        found |= set(session.scalars(select(LateFeeAccrual.bill_id).where(
            LateFeeAccrual.bill_id.in_(bill_ids[start : start + 1000]), LateFeeAccrual.as_of == as_of)))
    return found
