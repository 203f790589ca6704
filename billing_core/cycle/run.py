"""The monthly billing cycle (T/CI 1281 §7.1–§7.5): read → compute → verify → issue.

For every customer without a bill for the period: consumption from the readings, `compute_bill`,
the verification rules. A bill that trips a rule is stored *held* with a review work order and
is issued only once the review is resolved (`release_reviewed_bills`); readings that cannot give
a consumption (a register that went backwards) open a review without a bill. Clean bills are
issued at once: a bill number, a due date and outbox notifications.

The whole run is one transaction and is recorded in `cycle_runs`, so a failed run leaves nothing
behind and a second run of a finished period changes nothing and says so. Rows go in with bulk
inserts in chunks: the cycle is sized for 100,000 customers a month on one machine. Beyond that,
`cycle/partitioned.py` runs the same `_run_chunk` per customer-id partition, one transaction each,
in many worker processes.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.orm import Session, aliased, selectinload
from tqdm import tqdm

from billing_core.bill_types import BillRequest, ComputedBill, CustomerCategory, TariffAttributes, Usage
from billing_core.db.bulk import among, bulk_insert
from billing_core.tariffs.compute import compute_bill
from billing_core.consumption import AnomalyKind, Consumption, load_consumptions
from billing_core.errors import BillingError
from billing_core.operations.late_fees import put_late_fees_on_bills
from billing_core.db.models import (
    Bill,
    BillLine,
    BillStatus,
    Customer,
    Meter,
    WorkOrder,
    WorkOrderKind,
    WorkOrderStatus,
)
from billing_core.money import ZERO
from billing_core.operations.notifications import bill_issued_rows, recipients
from billing_core.db.operations_models import CycleRun, CycleRunStatus, OutboxNotification
from billing_core.operations.policy import OperationsPolicy, load_policy
from billing_core.periods import period_bounds
from billing_core.cycle.verification import VerificationContext, VerificationHit, verify_bill
from billing_core.operations.work_orders import WorkOrderNumbers, open_work_orders, work_order_row

REVIEW_CHANNEL = "verification"  # work orders opened by the verification rules (分散复核率)
LIVE_STATUSES = (BillStatus.COMPUTED, BillStatus.HELD, BillStatus.ISSUED, BillStatus.PAID,
                 BillStatus.PARTIALLY_PAID)

# Reads one chunk of customers' usage: customer id → Consumption (from readings) or Usage.
UsageLoader = Callable[[Session, Sequence[int], date, date], dict[int, Consumption | Usage]]


@dataclass
class CycleResult:
    period: str
    already_done: bool = False
    customers: int = 0
    skipped_existing: int = 0
    bills_computed: int = 0
    bills_held: int = 0
    bills_issued: int = 0
    blocked: int = 0
    review_work_orders: int = 0
    notifications: int = 0
    verified_existing: int = 0  # bills computed earlier (status computed), verified and issued now
    late_fee_bills: int = 0  # issued bills that carry 违约金 of earlier overdue bills
    late_fees: Decimal = ZERO
    hits_by_rule: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """What the run did, in Chinese, for the operator."""
        if self.already_done:
            return f"账期 {self.period} 已运行并发行，本次未做任何更改。"
        rules = "，".join(f"{rule} {count}" for rule, count in sorted(self.hits_by_rule.items())) or "无"
        return (
            f"账期 {self.period}：客户 {self.customers} 户（已有账单跳过 {self.skipped_existing}），"
            f"计算账单 {self.bills_computed} 张（另核查已计算账单 {self.verified_existing} 张），发行 {self.bills_issued} 张，"
            f"核查暂缓 {self.bills_held} 张，示数异常未出账 {self.blocked} 户，"
            f"复核工单 {self.review_work_orders} 张，通知 {self.notifications} 条；核查命中：{rules}。"
            + (f"{self.late_fee_bills} 张账单计入违约金共 {self.late_fees} 元。" if self.late_fee_bills else "")
        )


def previous_period(period: str, months: int = 1) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + (month - 1) - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def bill_number(prefix: str, period: str, account_no: str) -> str:
    """Deterministic and unique per customer and period: 'GD' + YYYYMM + 户号."""
    return f"{prefix}{period[:4]}{period[5:7]}{account_no}"


def default_usage_loader(
    session: Session, customer_ids: Sequence[int], start: date, end: date
) -> dict[int, Consumption | Usage]:
    return dict(load_consumptions(session, customer_ids, start, end))


@dataclass
class _Customer:
    id: int
    account_no: str
    name: str
    phone: str | None
    openid: str | None
    attributes: TariffAttributes


_ATTRIBUTE_COLUMNS = (
    Customer.category, Customer.region, Customer.household_type, Customer.residential_tou,
    Customer.voltage_level, Customer.purchase_mode, Customer.capacity_kva, Customer.basic_charge_mode,
    Customer.contracted_demand_kw, Customer.pf_standard, Customer.agency_price_multiplier,
)


def _load_customers(session: Session, ids: Sequence[int]) -> list[_Customer]:
    rows = session.execute(
        select(Customer.id, Customer.account_no, Customer.name, Customer.phone, Customer.wechat_openid,
               *_ATTRIBUTE_COLUMNS).where(among(session, Customer.id, ids)).order_by(Customer.id)
    )
    customers = []
    for row in rows:
        (cid, account_no, name, phone, openid, category, region, household, res_tou, voltage, purchase,
         capacity, basic_mode, demand, pf, multiplier) = row
        attributes = TariffAttributes.model_construct(
            category=category, region=region, household_type=household, residential_tou=bool(res_tou),
            voltage_level=voltage, purchase_mode=purchase, capacity_kva=capacity,
            basic_charge_mode=basic_mode, contracted_demand_kw=demand, pf_standard=pf,
            agency_price_multiplier=multiplier,
        )
        customers.append(_Customer(cid, account_no, name, phone, openid, attributes))
    return customers


def _kwh_by_customer(session: Session, ids: Sequence[int], period: str) -> dict[int, Decimal]:
    rows = session.execute(
        select(Bill.customer_id, Bill.total_kwh).where(
            # An IN list, not `among`: with the ids as an array this one query doubled the cycle's
            # PostgreSQL CPU (measured with bench_cycle_workers; the other queries did not change).
            Bill.customer_id.in_(ids), Bill.period == period, Bill.status.in_(LIVE_STATUSES)
        )
    )
    return {row[0]: row[1] for row in rows}


def _other_periods(session: Session, ids: Sequence[int], period: str, start: date, end: date
                   ) -> dict[int, list[tuple[date, date]]]:
    rows = session.execute(
        select(Bill.customer_id, Bill.period_start, Bill.period_end).where(
            among(session, Bill.customer_id, ids), Bill.period != period, Bill.status.in_(LIVE_STATUSES),
            Bill.period_start <= end, Bill.period_end >= start,
        )
    )
    found: dict[int, list[tuple[date, date]]] = {}
    for customer_id, other_start, other_end in rows:
        found.setdefault(customer_id, []).append((other_start, other_end))
    return found


def _multiplier_changes(session: Session, ids: Sequence[int], start: date, end: date
                        ) -> dict[int, list[VerificationHit]]:
    """A meter installed in the period whose predecessor had another multiplier (换表变倍率)."""
    old = aliased(Meter)
    rows = session.execute(
        select(Meter.customer_id, Meter.asset_no, Meter.multiplier, old.asset_no, old.multiplier)
        .join(old, old.id == Meter.replaced_meter_id)
        .where(among(session, Meter.customer_id, ids), Meter.installed_on >= start - timedelta(days=1),
               Meter.installed_on <= end, old.multiplier != Meter.multiplier)
    )
    hits: dict[int, list[VerificationHit]] = {}
    for customer_id, asset, multiplier, old_asset, old_multiplier in rows:
        hits.setdefault(customer_id, []).append(
            VerificationHit(
                "multiplier_changed",
                f"换表后综合倍率由 {old_multiplier}（{old_asset}）变为 {multiplier}（{asset}），需核实互感器变更记录。",
                {"previous": str(old_multiplier), "current": str(multiplier), "meter": asset},
            )
        )
    return hits


def _reading_hits(consumption: Consumption, policy: OperationsPolicy) -> list[VerificationHit]:
    """Consumption's reading anomalies in the verification vocabulary."""
    hits = []
    allowed = policy.verification.missing_days_allowed
    for anomaly in consumption.anomalies:
        if anomaly.kind is AnomalyKind.READING_DECREASED:
            hits.append(VerificationHit("reading_decreased", anomaly.message,
                                        {"meter": anomaly.asset_no or "", "register": str(anomaly.register)}))
        elif anomaly.kind is AnomalyKind.NO_READINGS:
            hits.append(VerificationHit("missing_reading", anomaly.message, {}))
        elif anomaly.kind is AnomalyKind.MISSING_DAYS and len(anomaly.days) > allowed:
            hits.append(VerificationHit("missing_reading", anomaly.message, {"missing_days": str(len(anomaly.days))}))
    return hits


def _bill_row(customer: _Customer, period: str, bill: ComputedBill, status: BillStatus, bill_no: str | None,
              issued_at: datetime | None, due_date: date | None, now: datetime) -> dict[str, Any]:
    return {
        "customer_id": customer.id,
        "period": period,
        "period_start": bill.period_start,
        "period_end": bill.period_end,
        "total_kwh": bill.total_kwh,
        "amount": bill.total,
        "status": status,
        "bill_no": bill_no,
        "issued_at": issued_at,
        "due_date": due_date,
        "tariff_versions": list(bill.tariff_versions),
        "notes": list(bill.notes),
        "computed_at": now,
    }


def _verified_row(
    customer: _Customer, period: str, bill: ComputedBill, hits: list[VerificationHit],
    kwh_last_month: dict[int, Decimal], kwh_last_year: dict[int, Decimal],
    other_periods: dict[int, list[tuple[date, date]]], policy: OperationsPolicy,
    issued_at: datetime, due_date: date, now: datetime,
) -> dict[str, Any]:
    """Run the rules (adding to `hits`) and return the bill row: held, or issued with number and due date."""
    context = VerificationContext(
        bill=bill,
        category=str(customer.attributes.category),
        last_month_kwh=kwh_last_month.get(customer.id),
        same_month_last_year_kwh=kwh_last_year.get(customer.id),
        other_periods=other_periods.get(customer.id, ()),
    )
    hits.extend(verify_bill(context, policy))
    if hits:
        return _bill_row(customer, period, bill, BillStatus.HELD, None, None, None, now)
    number = bill_number(policy.issue.bill_no_prefix, period, customer.account_no)
    return _bill_row(customer, period, bill, BillStatus.ISSUED, number, issued_at, due_date, now)


def _stored_computed_bills(session: Session, ids: Sequence[int], period: str) -> dict[int, tuple[int, ComputedBill]]:
    """Bills of the period already computed (not yet verified or issued), as `compute_bill` returned them."""
    bills = session.scalars(
        select(Bill).options(selectinload(Bill.lines))
        .where(among(session, Bill.customer_id, ids), Bill.period == period, Bill.status == BillStatus.COMPUTED)
    ).all()
    found = {}
    for bill in bills:
        found[bill.customer_id] = (bill.id, bill.to_computed(account_no=""))
        session.expire(bill)  # updated below with Core: the ORM copy reloads when next read
    return found


def _compute(customer: _Customer, start: date, end: date, usage: Usage) -> ComputedBill:
    """The customer's bill for the period: the one place the cycle (and `compute_period`) calls the engine."""
    return compute_bill(BillRequest(account_no=customer.account_no, attributes=customer.attributes,
                                    period_start=start, period_end=end, usage=usage))


def _line_rows(bill_id: int, bill: ComputedBill) -> list[dict[str, Any]]:
    return [
        {
            "bill_id": bill_id, "position": position, "code": item.code, "name": item.name,
            "quantity": item.quantity, "unit": item.unit, "unit_price": item.unit_price,
            "amount": item.amount, "tariff_version": item.tariff_version, "source": item.source,
            "explanation": item.explanation, "period_start": item.period_start, "period_end": item.period_end,
        }
        for position, item in enumerate(bill.lines, start=1)
    ]


def _insert_bills(session: Session, period: str, bill_rows: list[dict[str, Any]]) -> dict[int, int]:
    """Insert bill rows; customer id → new bill id.

    Core executemany (no RETURNING, no ORM bookkeeping) is several times faster for bulk rows;
    the ids are then read back with one query (one bill per customer and period).
    """
    if not bill_rows:
        return {}
    bulk_insert(session, Bill.__table__, bill_rows)
    chunk_ids = [row["customer_id"] for row in bill_rows]
    return {row[0]: row[1] for row in session.execute(
        select(Bill.customer_id, Bill.id).where(Bill.period == period, among(session, Bill.customer_id, chunk_ids)))}


def _review_description(hits: Iterable[VerificationHit]) -> str:
    return "\n".join(f"[{hit.rule}] {hit.message}" for hit in hits)


def run_cycle(
    session: Session,
    period: str,
    *,
    issue_date: date | None = None,
    policy: OperationsPolicy | None = None,
    progress: bool = False,
    chunk_size: int = 2000,
    usage_loader: UsageLoader = default_usage_loader,
) -> CycleResult:
    """Run the cycle of `period` ('YYYY-MM') in the caller's transaction (the caller commits)."""
    start, end = period_bounds(period)
    policy = policy or load_policy()
    issue_date = issue_date or datetime.now(UTC).date()
    result = CycleResult(period=period)
    done = session.scalar(select(CycleRun).where(CycleRun.period == period))
    if done is not None:
        if done.status is CycleRunStatus.RUNNING:  # only a partitioned run commits while running
            raise BillingError(f"账期 {period} 正在分区运行：用 run-cycle --workers N 或 cycle-worker 继续。")
        result.already_done = True
        return result

    now = datetime.now(UTC)
    run = CycleRun(period=period, issue_date=issue_date, status=CycleRunStatus.RUNNING, started_at=now)
    session.add(run)
    session.flush()

    all_ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    # A bill already computed for the period (e.g. by `powerdesk demo cycle`) still goes through
    # verification and issue; any other status means the customer's period is done.
    billed = set(session.scalars(
        select(Bill.customer_id).where(Bill.period == period, Bill.status != BillStatus.COMPUTED)))
    todo = [cid for cid in all_ids if cid not in billed]
    result.customers = len(all_ids)
    result.skipped_existing = len(all_ids) - len(todo)
    numbers = WorkOrderNumbers(session, issue_date)
    due_date = issue_date + timedelta(days=policy.issue.due_days)
    issued_at = datetime.combine(issue_date, datetime.min.time(), tzinfo=UTC) if issue_date != now.date() else now
    last_month, last_year = previous_period(period), previous_period(period, 12)

    bar = tqdm(total=len(todo), desc=f"账期 {period}", unit="户", disable=not progress, leave=False)
    for offset in range(0, len(todo), chunk_size):
        ids = todo[offset : offset + chunk_size]
        _run_chunk(session, ids, period, start, end, policy, result, numbers, due_date, issued_at, now,
                   last_month, last_year, usage_loader)
        bar.update(len(ids))
    bar.close()

    run.customers = result.customers
    run.skipped_existing = result.skipped_existing
    run.bills_computed = result.bills_computed
    run.bills_held = result.bills_held
    run.bills_issued = result.bills_issued
    run.blocked = result.blocked
    run.review_work_orders = result.review_work_orders
    run.status = CycleRunStatus.COMPLETED
    run.finished_at = datetime.now(UTC)
    session.flush()
    return result


@dataclass
class PeriodBills:
    """What `compute_period` did (printed by `powerdesk demo cycle`)."""

    period: str
    computed: int = 0
    total: Decimal = ZERO
    already_billed: int = 0
    held_for_review: list[tuple[str, str]] = field(default_factory=list)  # (account_no, why)
    failed: list[tuple[str, str]] = field(default_factory=list)
    sample: tuple[str, str, ComputedBill] | None = None  # (account_no, name, bill)


def compute_period(
    session: Session, period: str, *, chunk_size: int = 2000, usage_loader: UsageLoader = default_usage_loader,
) -> PeriodBills:
    """Compute, not verify or issue, the period's bill of every customer that has none yet; caller commits.

    The first half of `run_cycle`, with the same customers, usage and engine call: the bills are
    stored *computed*, and a later `run_cycle` of the period verifies and issues them. Readings
    needing review (a backwards reading, no readings) get no bill and are listed, so a person
    looks at them first. Re-running for a period changes nothing that exists.
    """
    start, end = period_bounds(period)
    result = PeriodBills(period)
    billed = set(session.scalars(select(Bill.customer_id).where(Bill.period == period)))
    result.already_billed = len(billed)
    todo = [cid for cid in session.scalars(select(Customer.id).order_by(Customer.id)) if cid not in billed]
    now = datetime.now(UTC)
    for offset in range(0, len(todo), chunk_size):
        ids = todo[offset : offset + chunk_size]
        usages = usage_loader(session, ids, start, end)
        bills: list[tuple[_Customer, ComputedBill]] = []
        for customer in _load_customers(session, ids):
            source = usages.get(customer.id)
            if source is None:
                result.held_for_review.append((customer.account_no, "本期没有任何抄表数据，需人工复核。"))
                continue
            if isinstance(source, Consumption):
                if source.needs_review:
                    why = "；".join(a.message for a in source.anomalies if a.blocks_billing)
                    result.held_for_review.append((customer.account_no, why))
                    continue
                source = source.to_usage()
            try:
                bill = _compute(customer, start, end, source)
            except BillingError as exc:
                result.failed.append((customer.account_no, str(exc)))
                continue
            bills.append((customer, bill))
            result.computed += 1
            result.total += bill.total
            if result.sample is None or (customer.attributes.category is CustomerCategory.CI_TWO_PART
                                         and len(bill.lines) > len(result.sample[2].lines)):
                result.sample = (customer.account_no, customer.name, bill)  # the richest bill shows most
        bill_ids = _insert_bills(session, period, [
            _bill_row(customer, period, bill, BillStatus.COMPUTED, None, None, None, now) for customer, bill in bills])
        line_rows = [row for customer, bill in bills for row in _line_rows(bill_ids[customer.id], bill)]
        if line_rows:
            bulk_insert(session, BillLine.__table__, line_rows)
    return result


def _collector_paused(function: Callable[..., None]) -> Callable[..., None]:
    """Run `function` with Python's cyclic garbage collector off, collecting the young generations after.

    A chunk allocates millions of small objects that live until it ends (readings, per-day kWh,
    bill lines) and form no cycles worth chasing; the collector, triggered every few hundred
    allocations, kept re-scanning them and took about half the read step's CPU. Memory freed
    by reference counting is unaffected; cycles the chunk made are collected when it returns.
    """
    @functools.wraps(function)
    def paused(*args: Any, **kwargs: Any) -> None:
        if not gc.isenabled():  # nested or paused by the caller: leave it as it is
            function(*args, **kwargs)
            return
        gc.disable()
        try:
            function(*args, **kwargs)
        finally:
            gc.enable()
            gc.collect(1)
    return paused


@_collector_paused
def _run_chunk(
    session: Session, ids: list[int], period: str, start: date, end: date, policy: OperationsPolicy,
    result: CycleResult, numbers: Iterator[str], due_date: date, issued_at: datetime, now: datetime,
    last_month: str, last_year: str, usage_loader: UsageLoader,
) -> None:
    customers = _load_customers(session, ids)
    usages = usage_loader(session, ids, start, end)
    kwh_last_month = _kwh_by_customer(session, ids, last_month)
    kwh_last_year = _kwh_by_customer(session, ids, last_year)
    other_periods = _other_periods(session, ids, period, start, end)
    multiplier_hits = _multiplier_changes(session, ids, start, end)
    stored = _stored_computed_bills(session, ids, period)

    bill_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    computed: list[tuple[_Customer, ComputedBill, list[VerificationHit], dict[str, Any]]] = []
    blocked: list[tuple[_Customer, list[VerificationHit]]] = []
    for customer in customers:
        source = usages.get(customer.id)
        hits: list[VerificationHit] = list(multiplier_hits.get(customer.id, ()))
        if customer.id in stored:
            bill_id, bill = stored[customer.id]
            if isinstance(source, Consumption):
                hits.extend(_reading_hits(source, policy))
            row = _verified_row(customer, period, bill, hits, kwh_last_month, kwh_last_year, other_periods,
                                policy, issued_at, due_date, now)
            updates.append({"b_id": bill_id, "b_status": row["status"], "b_bill_no": row["bill_no"],
                            "b_issued_at": row["issued_at"], "b_due_date": row["due_date"]})
            computed.append((customer, bill, hits, {**row, "id": bill_id}))
            continue
        if source is None:
            blocked.append((customer, [*hits, VerificationHit("missing_reading", "本期没有任何抄表数据。", {})]))
            continue
        if isinstance(source, Consumption):
            hits.extend(_reading_hits(source, policy))
            if source.needs_review:
                blocked.append((customer, hits))
                continue
            usage = source.to_usage()
        else:
            usage = source
        try:
            bill = _compute(customer, start, end, usage)
        except (BillingError, ValueError) as exc:
            blocked.append((customer, [*hits, VerificationHit("compute_failed", f"电费计算失败：{exc}", {})]))
            continue
        row = _verified_row(customer, period, bill, hits, kwh_last_month, kwh_last_year, other_periods,
                            policy, issued_at, due_date, now)
        bill_rows.append(row)
        computed.append((customer, bill, hits, row))

    bill_ids = _insert_bills(session, period, bill_rows)
    if updates:
        table = Bill.__table__
        session.execute(
            table.update().where(table.c.id == bindparam("b_id")).values(
                status=bindparam("b_status"), bill_no=bindparam("b_bill_no"),
                issued_at=bindparam("b_issued_at"), due_date=bindparam("b_due_date")),
            updates,
        )
    # 违约金 of earlier overdue bills go on the bills issued now (a held bill gets them when released),
    # after verification: the fee is not energy, so no rule sees it.
    late_fees = put_late_fees_on_bills(session, {
        customer.id: (row["id"] if "id" in row else bill_ids[customer.id], len(bill.lines) + 1)
        for customer, bill, hits, row in computed if not hits
    }, issued_at.date())
    result.late_fee_bills += len(late_fees)
    result.late_fees += sum(late_fees.values(), ZERO)
    line_rows: list[dict[str, Any]] = []
    reviews: list[tuple[_Customer, int | None, list[VerificationHit], str]] = []
    outbox_rows: list[dict[str, Any]] = []
    for customer, bill, hits, row in computed:
        stored_bill = "id" in row  # computed earlier: its lines are already stored
        bill_id = row["id"] if stored_bill else bill_ids[customer.id]
        if not stored_bill:
            line_rows.extend(_line_rows(bill_id, bill))
        for hit in hits:
            result.hits_by_rule[hit.rule] = result.hits_by_rule.get(hit.rule, 0) + 1
        if hits:
            result.bills_held += 1
            reviews.append((customer, bill_id, hits, f"账单核查暂缓发行：{hits[0].message}"))
        else:
            result.bills_issued += 1
            outbox_rows.extend(
                bill_issued_rows(
                    bill_id=bill_id, bill_no=row["bill_no"], account_no=customer.account_no, name=customer.name,
                    period=period, amount=bill.total + late_fees.get(bill_id, ZERO), total_kwh=bill.total_kwh,
                    due_date=row["due_date"],
                    channels=policy.issue.notification_channels,
                    reachable=recipients(customer.phone, customer.openid),
                )
            )
    for customer, hits in blocked:
        for hit in hits:
            result.hits_by_rule[hit.rule] = result.hits_by_rule.get(hit.rule, 0) + 1
        result.blocked += 1
        reviews.append((customer, None, hits, f"示数异常未出账：{hits[0].message if hits else '需复核'}"))
    result.bills_computed += len(bill_rows)
    result.verified_existing += len(updates)
    if line_rows:
        bulk_insert(session, BillLine.__table__, line_rows)
    if outbox_rows:
        bulk_insert(session, OutboxNotification.__table__, outbox_rows)
        result.notifications += len(outbox_rows)
    # Numbered last, just before they are written: parallel cycle workers serialise from here to
    # their commit (see cycle/partitioned.py), so the shorter this tail, the less they wait.
    review_rows = [_review_row(next(numbers), customer, period, bill_id, hits, now, title)
                   for customer, bill_id, hits, title in reviews]
    if review_rows:
        open_work_orders(session, review_rows)
        result.review_work_orders += len(review_rows)


def _review_row(number: str, customer: _Customer, period: str, bill_id: int | None,
                hits: list[VerificationHit], now: datetime, title: str) -> dict[str, Any]:
    return work_order_row(
        number, WorkOrderKind.REVIEW, title, _review_description(hits),
        account_no=customer.account_no, bill_id=bill_id, period=period, channel=REVIEW_CHANNEL, now=now,
        payload={"rules": [hit.rule for hit in hits], "hits": [
            {"rule": hit.rule, "message": hit.message, "details": hit.details} for hit in hits]},
    )


@dataclass
class ReleaseResult:
    period: str
    released: int = 0
    still_held: int = 0
    notifications: int = 0
    rebilled: int = 0  # customers blocked by their readings, computed after their review
    still_blocked: int = 0


def release_reviewed_bills(
    session: Session, period: str, *, issue_date: date | None = None, policy: OperationsPolicy | None = None,
    usage_loader: UsageLoader = default_usage_loader,
) -> ReleaseResult:
    """Issue the held bills of `period` whose review work orders are all resolved or closed, and bill
    the customers whose readings blocked the cycle once their review is resolved."""
    period_bounds(period)
    policy = policy or load_policy()
    issue_date = issue_date or datetime.now(UTC).date()
    now = datetime.now(UTC)
    result = ReleaseResult(period)
    open_review = (
        select(WorkOrder.id)
        .where(WorkOrder.bill_id == Bill.id, WorkOrder.kind == WorkOrderKind.REVIEW,
               WorkOrder.status.in_((WorkOrderStatus.OPEN, WorkOrderStatus.IN_PROGRESS)))
        .exists()
    )
    held = session.execute(
        select(Bill.id, Bill.amount, Bill.total_kwh, Customer.account_no, Customer.name, Customer.phone,
               Customer.wechat_openid, open_review.label("blocked"), Bill.customer_id,
               select(func.max(BillLine.position)).where(BillLine.bill_id == Bill.id).scalar_subquery())
        .join(Customer, Customer.id == Bill.customer_id)
        .where(Bill.period == period, Bill.status == BillStatus.HELD)
    ).all()
    due_date = issue_date + timedelta(days=policy.issue.due_days)
    issued_at = datetime.combine(issue_date, datetime.min.time(), tzinfo=UTC) if issue_date != now.date() else now
    released = [row for row in held if not row[7]]
    result.still_held += len(held) - len(released)
    late_fees = put_late_fees_on_bills(
        session, {row[8]: (row[0], (row[9] or 0) + 1) for row in released}, issue_date)
    outbox: list[dict[str, Any]] = []
    for bill_id, amount, kwh, account_no, name, phone, openid, _blocked, _customer_id, _last in released:
        amount += late_fees.get(bill_id, ZERO)
        number = bill_number(policy.issue.bill_no_prefix, period, account_no)
        session.execute(
            update(Bill).where(and_(Bill.id == bill_id, Bill.status == BillStatus.HELD)).values(
                status=BillStatus.ISSUED, bill_no=number, issued_at=issued_at, due_date=due_date)
        )
        result.released += 1
        outbox.extend(bill_issued_rows(
            bill_id=bill_id, bill_no=number, account_no=account_no, name=name, period=period, amount=amount,
            total_kwh=kwh, due_date=due_date, channels=policy.issue.notification_channels,
            reachable=recipients(phone, openid)))
    if outbox:
        bulk_insert(session, OutboxNotification.__table__, outbox)
        result.notifications = len(outbox)
    rebilled = _rebill_reviewed_customers(session, period, policy, issue_date, due_date, issued_at, now, usage_loader)
    result.rebilled, result.notifications = rebilled.bills_computed, result.notifications + rebilled.notifications
    result.released += rebilled.bills_issued
    result.still_held += rebilled.bills_held
    result.still_blocked = rebilled.blocked
    run = session.scalar(select(CycleRun).where(CycleRun.period == period))
    if run is not None and (result.released or rebilled.bills_computed or rebilled.blocked):
        run.bills_issued += result.released
        run.bills_held = max(run.bills_held - (result.released - rebilled.bills_issued), 0) + rebilled.bills_held
        run.bills_computed += rebilled.bills_computed
        run.blocked = max(run.blocked - rebilled.bills_computed, 0)
        run.review_work_orders += rebilled.review_work_orders
    session.flush()
    return result


def _rebill_reviewed_customers(
    session: Session, period: str, policy: OperationsPolicy, issue_date: date, due_date: date,
    issued_at: datetime, now: datetime, usage_loader: UsageLoader,
) -> CycleResult:
    """Bill customers whose readings blocked the cycle, once their review is resolved (readings fixed).

    Only customers with no bill for the period and no review still open for it: a customer whose
    readings are still wrong gets one new review, not one per release run.
    """
    start, end = period_bounds(period)
    reviewed = select(WorkOrder.account_no).where(
        WorkOrder.kind == WorkOrderKind.REVIEW, WorkOrder.period == period, WorkOrder.bill_id.is_(None),
        WorkOrder.channel == REVIEW_CHANNEL,
    )
    still_open = reviewed.where(WorkOrder.status.in_((WorkOrderStatus.OPEN, WorkOrderStatus.IN_PROGRESS)))
    billed = select(Bill.customer_id).where(Bill.period == period)
    ids = list(session.scalars(
        select(Customer.id).where(
            Customer.account_no.in_(reviewed.where(WorkOrder.status.in_(
                (WorkOrderStatus.RESOLVED, WorkOrderStatus.CLOSED)))),
            Customer.account_no.not_in(still_open),
            Customer.id.not_in(billed),
        ).order_by(Customer.id)
    ))
    result = CycleResult(period=period)
    if ids:
        _run_chunk(session, ids, period, start, end, policy, result, WorkOrderNumbers(session, issue_date),
                   due_date, issued_at, now, previous_period(period), previous_period(period, 12), usage_loader)
    return result


def count_bills(session: Session, period: str) -> dict[str, int]:
    """Bills of a period by status (for reports and tests)."""
    rows = session.execute(select(Bill.status, func.count()).where(Bill.period == period).group_by(Bill.status))
    return {str(status): count for status, count in rows}
