"""Counting the facts behind the table-1 KPIs from the database, for one period (YYYY-MM).

Each count is one query whose meaning is written next to it, so a figure on the report can be
traced to rows. Payments count toward 实收电费 only up to each bill's amount: a duplicate payment
waiting for its refund is not revenue.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session

from billing_core.cycle.run import REVIEW_CHANNEL
from billing_core.operations.kpi import KpiFacts, KpiValue, compute_kpis
from billing_core.db.models import (
    Adjustment,
    AdjustmentStatus,
    Bill,
    BillStatus,
    Customer,
    Meter,
    Payment,
    PaymentChannel,
    PaymentStatus,
    WorkOrder,
    WorkOrderKind,
)
from billing_core.db.operations_models import StatementImport, StatementLineRow, StatementLineStatus
from billing_core.periods import period_bounds

ISSUED_STATUSES = (BillStatus.ISSUED, BillStatus.PAID, BillStatus.PARTIALLY_PAID)


def collect_facts(session: Session, period: str) -> KpiFacts:
    start, end = period_bounds(period)

    # 应抄表客户数: customers with a meter on site during the period.
    customers_to_read = session.scalar(
        select(func.count(distinct(Meter.customer_id))).where(
            Meter.installed_on <= end, or_(Meter.removed_on.is_(None), Meter.removed_on >= start)
        )
    ) or 0

    # 电子化结算客户数: customers who paid this period's bill, and paid it only electronically.
    per_customer = (
        select(
            Bill.customer_id,
            func.sum(case((Payment.channel == PaymentChannel.COUNTER, 1), else_=0)).label("counter"),
        )
        .join(Payment, Payment.bill_id == Bill.id)
        .where(Bill.period == period, Payment.status == PaymentStatus.SUCCEEDED)
        .group_by(Bill.customer_id)
        .subquery()
    )
    electronic = session.scalar(select(func.count()).select_from(per_customer).where(per_customer.c.counter == 0)) or 0

    bills_total = session.scalar(select(func.count()).select_from(Bill).where(Bill.period == period)) or 0

    # 电费差错数: bills of the period cancelled (re-issued) or corrected by an approved 退补.
    corrected = select(Adjustment.bill_id).where(
        Adjustment.bill_id.is_not(None),
        Adjustment.status.in_((AdjustmentStatus.APPROVED, AdjustmentStatus.APPLIED)),
    )
    in_error = session.scalar(
        select(func.count()).select_from(Bill).where(
            Bill.period == period, or_(Bill.status == BillStatus.CANCELLED, Bill.id.in_(corrected))
        )
    ) or 0

    # 核查规则自动筛查出的异常工单数: review work orders opened by the verification rules.
    reviews = session.scalar(
        select(func.count()).select_from(WorkOrder).where(
            WorkOrder.kind == WorkOrderKind.REVIEW, WorkOrder.period == period, WorkOrder.channel == REVIEW_CHANNEL
        )
    ) or 0
    # 应发行: every bill computed for the period plus customers blocked before a bill (review, no bill).
    blocked = session.scalar(
        select(func.count(distinct(WorkOrder.account_no))).where(
            WorkOrder.kind == WorkOrderKind.REVIEW, WorkOrder.period == period, WorkOrder.bill_id.is_(None),
            WorkOrder.channel == REVIEW_CHANNEL,
        )
    ) or 0
    live_bills = session.scalar(
        select(func.count()).select_from(Bill).where(Bill.period == period, Bill.status != BillStatus.CANCELLED)
    ) or 0
    issued_customers = session.scalar(
        select(func.count(distinct(Bill.customer_id))).where(Bill.period == period, Bill.status.in_(ISSUED_STATUSES))
    ) or 0

    # 应收 / 实收: the issued bills' amounts, and payments up to each bill's amount.
    paid = (
        select(Payment.bill_id, func.sum(Payment.amount).label("paid"))
        .where(Payment.status == PaymentStatus.SUCCEEDED)
        .group_by(Payment.bill_id)
        .subquery()
    )
    receivable, received = session.execute(
        select(
            func.coalesce(func.sum(Bill.amount), 0),
            func.coalesce(func.sum(case((paid.c.paid > Bill.amount, Bill.amount), else_=func.coalesce(paid.c.paid, 0))), 0),
        )
        .select_from(Bill)
        .join(paid, paid.c.bill_id == Bill.id, isouter=True)
        .where(Bill.period == period, Bill.status.in_(ISSUED_STATUSES))
    ).one()

    withholding = session.scalar(select(func.count()).select_from(Customer).where(Customer.withholding_agreement)) or 0
    customers_total = session.scalar(select(func.count()).select_from(Customer)) or 0

    # 当月总笔数: every line of the statements whose value dates fall in the month (set-aside too).
    in_month = select(StatementImport.id).where(
        and_(StatementImport.first_value_date <= end, StatementImport.last_value_date >= start)
    )
    statement_lines = session.scalar(
        select(func.count()).select_from(StatementLineRow).where(
            or_(
                and_(StatementLineRow.value_date >= start, StatementLineRow.value_date <= end),
                and_(StatementLineRow.value_date.is_(None), StatementLineRow.import_id.in_(in_month)),
            )
        )
    ) or 0
    auto = session.scalar(
        select(func.count()).select_from(StatementLineRow).where(
            StatementLineRow.status == StatementLineStatus.MATCHED,
            StatementLineRow.value_date >= start, StatementLineRow.value_date <= end,
        )
    ) or 0

    return KpiFacts(
        period=period,
        customers_to_read=customers_to_read,
        electronic_settlement_customers=electronic,
        bills_total=bills_total,
        bills_in_error=in_error,
        review_work_orders=reviews,
        bills_to_issue=live_bills + blocked,
        customers_issued=issued_customers,
        amount_received=Decimal(received).quantize(Decimal("0.01")),
        amount_receivable=Decimal(receivable).quantize(Decimal("0.01")),
        withholding_customers=withholding,
        customers_total=customers_total,
        auto_reconciled_lines=auto,
        statement_lines=statement_lines,
    )


def period_kpis(session: Session, period: str) -> list[KpiValue]:
    """The seven KPIs of `period`, counted from the database."""
    return compute_kpis(collect_facts(session, period))
