"""Build a scenario's `initial_state` into a fresh SQLite database migrated by the real chains.

Every bill is computed by `billing_core.tariffs.compute.compute_bill` from the scenario's usage, so the
amounts the judge expects are the billing core's, never typed into a YAML file. The migrated
empty database is built once per process and copied per scenario (migrations are the slow part).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from billing_core.bill_types import BillRequest, ComputedBill, TouUsage, Usage
from billing_core.tariffs.compute import compute_bill
from billing_core.db.engine import make_engine
from billing_core.db.models import (
    Bill,
    BillStatus,
    Customer,
    Meter,
    Payment,
    PaymentChannel,
    PaymentStatus,
    Reading,
    ReadingRegister,
    ReadingSource,
    WorkOrder,
    WorkOrderKind,
    WorkOrderPriority,
    WorkOrderStatus,
    bill_from_computed,
    next_work_order_no,
)
from billing_core.periods import period_bounds
from evals.scenario import SHANGHAI, BillSpec, CustomerSpec, MeterSpec, Scenario

_TEMPLATE: Path | None = None


def _migrated_template() -> Path:
    """An empty database with every registered Alembic chain applied (billing first), built once.

    Every chain, as `powerdesk db upgrade` runs them: the KPI report now also reads the channels'
    availability table, which a hand-written billing/tools/agent list left out."""
    global _TEMPLATE
    if _TEMPLATE is None or not _TEMPLATE.exists():
        from alembic import command

        from billing_core.db.schema import migration_chains

        directory = Path(tempfile.mkdtemp(prefix="powerdesk-eval-template-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "template.db"
        url = f"sqlite:///{path}"
        for _name, config in migration_chains(url):
            command.upgrade(config, "head")
        _TEMPLATE = path
    return _TEMPLATE


@dataclass
class BuiltBill:
    customer_key: str
    period: str
    computed: ComputedBill
    bill_id: int
    bill_no: str
    due_date: date


@dataclass
class World:
    """The scenario's database and the facts the judge resolves against."""

    scenario: Scenario
    url: str
    directory: Path
    engine: Engine
    sessions: sessionmaker[Session]
    now: datetime
    customers: dict[str, CustomerSpec]
    bills: dict[tuple[str, str], BuiltBill] = field(default_factory=dict)
    existing_tickets: list[str] = field(default_factory=list)
    payments_before: list[tuple] = field(default_factory=list)

    def clock(self) -> datetime:
        """The scenario's fixed 'now' (aware, UTC), so due dates and late fees are reproducible."""
        return self.now.astimezone(UTC)

    def close(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.directory, ignore_errors=True)


def default_due_date(period: str) -> date:
    """The 15th of the second month after the period (May's bill is due on 15 July)."""
    start, _ = period_bounds(period)
    year, month = start.year, start.month + 2
    if month > 12:
        year, month = year + 1, month - 12
    return date(year, month, 15)


def _usage(spec: BillSpec) -> Usage:
    tou = TouUsage(**spec.usage.tou) if spec.usage.tou else None
    return Usage(total_kwh=spec.usage.total_kwh, tou=tou, reactive_kvarh=spec.usage.reactive_kvarh,
                 max_demand_kw=spec.usage.max_demand_kw)


def _local(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI).astimezone(UTC)


def payments_snapshot(session: Session) -> list[tuple]:
    """Every payment row as plain values: the judge compares it before and after."""
    rows = session.scalars(select(Payment).order_by(Payment.id))
    return [(p.id, p.bill_id, p.customer_id, str(p.amount), p.channel.value, p.status.value,
             p.idempotency_key)
            for p in rows]


def build_world(scenario: Scenario) -> World:
    """A fresh database holding exactly the scenario's customers, bills, payments and tickets."""
    directory = Path(tempfile.mkdtemp(prefix=f"powerdesk-eval-{scenario.id[:40]}-"))
    path = directory / "world.db"
    shutil.copyfile(_migrated_template(), path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    state = scenario.initial_state
    world = World(scenario=scenario, url=url, directory=directory, engine=engine, sessions=sessions,
                  now=state.now, customers={c.key: c for c in state.customers})
    today = state.now.astimezone(SHANGHAI).date()
    with sessions() as session:
        ids: dict[str, Customer] = {}
        for spec in state.customers:
            customer = Customer(
                account_no=spec.account_no, name=spec.name, phone=spec.phone, id_last4=spec.id_last4,
                address=spec.address, category=spec.category, household_type=spec.household_type,
                residential_tou=spec.residential_tou, voltage_level=spec.voltage_level,
                purchase_mode=spec.purchase_mode, capacity_kva=spec.capacity_kva,
                basic_charge_mode=spec.basic_charge_mode, contracted_demand_kw=spec.contracted_demand_kw,
                pf_standard=spec.pf_standard, wechat_openid=spec.wechat_openid,
                withholding_agreement=spec.withholding_agreement)
            session.add(customer)
            session.flush()
            ids[spec.key] = customer
            for meter in spec.meters:
                row = Meter(asset_no=meter.asset_no, customer_id=customer.id, multiplier=meter.multiplier,
                            installed_on=meter.installed_on, removed_on=meter.removed_on)
                session.add(row)
                if meter.daily_kwh is not None:
                    session.flush()
                    _add_daily_readings(session, row.id, meter, today)
            for bill_spec in spec.bills:
                world.bills[(spec.key, bill_spec.period)] = _add_bill(session, customer, spec.key, bill_spec,
                                                                      today)
        for ticket in state.tickets:
            customer = ids[ticket.customer]
            bill = world.bills.get((ticket.customer, ticket.period)) if ticket.period else None
            created = state.now - timedelta(days=2)
            order = WorkOrder(
                no=next_work_order_no(session, created.astimezone(SHANGHAI).date()),
                kind=WorkOrderKind(ticket.kind), account_no=customer.account_no,
                bill_id=bill.bill_id if bill else None, period=ticket.period,
                status=WorkOrderStatus(ticket.status), priority=WorkOrderPriority.NORMAL,
                title=f"{'电费异议' if ticket.kind == 'dispute' else '投诉'}：{ticket.period or ''}",
                description=ticket.description, contact=customer.phone, channel="web",
                created_at=created.astimezone(UTC),
                payload={"category": ticket.category,
                         "answer_due_at": (created + timedelta(days=7)).astimezone(UTC).isoformat()})
            session.add(order)
            session.flush()
            world.existing_tickets.append(order.no)
        _add_history(session, state, ids)
        session.commit()
        world.payments_before = payments_snapshot(session)
    return world


def _add_daily_readings(session: Session, meter_id: int, spec: MeterSpec, today: date) -> None:
    """One active-total reading a day up to yesterday, advancing `daily_kwh` (kWh) a day (plus `extra_kwh`)."""
    assert spec.daily_kwh is not None
    first = spec.readings_from or today - timedelta(days=400)
    step = spec.daily_kwh / spec.multiplier
    days = (today - first).days

    def extra(day: date) -> Decimal:  # kWh added on or before `day` (a spike stays in the register)
        return sum((kwh for when, kwh in spec.extra_kwh.items() if when <= day), Decimal(0)) / spec.multiplier

    registers = {ReadingRegister.ACTIVE_TOTAL: Decimal(1)}
    registers |= {ReadingRegister(name): share for name, share in (spec.tou_shares or {}).items()}
    estimated = set(spec.estimated_days)
    session.add_all(Reading(meter_id=meter_id, read_date=day, register=register,
                            value=spec.first_reading * share + (step * i + extra(day)) * share,
                            source=ReadingSource.ESTIMATED if day in estimated else ReadingSource.DAILY)
                    for register, share in registers.items() for i in range(days)
                    for day in (first + timedelta(days=i),))


def _add_history(session: Session, state: Any, ids: dict[str, Customer]) -> None:
    """Earlier conversations (their records) and hand-offs still waiting, for the repeat-contact and
    unanswered-hand-off scenarios of the negative-experience detector."""
    from agent.models import ConversationRecord, Outcome
    from tools.models import HandoffRequest, HandoffStatus

    for index, past in enumerate(state.past_conversations):
        started = state.now - timedelta(days=past.days_ago)
        session.add(ConversationRecord(
            conversation_id=f"earlier-{index}", channel=past.channel, account_no=ids[past.customer].account_no,
            brain="local", topic=past.topic, intents=[past.topic], tickets=[], outcome=Outcome(past.outcome),
            turn_count=2, started_at=started.astimezone(UTC), ended_at=(started + timedelta(minutes=5)).astimezone(UTC)))
    for index, waiting in enumerate(state.waiting_handoffs):
        created = state.now - timedelta(minutes=waiting.minutes_ago)
        session.add(HandoffRequest(
            no=f"HO{created.astimezone(SHANGHAI):%Y%m%d}{9000 + index:04d}", conversation_id=f"earlier-handoff-{index}",
            channel=waiting.channel, account_no=ids[waiting.customer].account_no, reason="customer_asked",
            summary="客户此前要求转人工", status=HandoffStatus.WAITING, created_at=created.astimezone(UTC), payload={}))
    session.flush()


def _add_bill(session: Session, customer: Customer, key: str, spec: BillSpec, today: date) -> BuiltBill:
    start, end = period_bounds(spec.period)
    computed = compute_bill(BillRequest(
        account_no=customer.account_no, attributes=customer.tariff_attributes(), period_start=start,
        period_end=end, usage=_usage(spec), back_charge_kwh=spec.back_charge_kwh))
    bill = bill_from_computed(customer.id, spec.period, computed)
    due = spec.due_date or default_due_date(spec.period)
    bill.due_date = due
    bill.bill_no = f"GD{spec.period.replace('-', '')}{customer.account_no}"
    bill.status = BillStatus(spec.status)
    if spec.status == "issued":
        bill.issued_at = _local(end + timedelta(days=5))
    session.add(bill)
    session.flush()
    paid = Decimal("0")
    for number, payment in enumerate(spec.payments):
        amount = bill.amount if payment.amount == "full" else Decimal(payment.amount)
        paid_at = (payment.paid_at.astimezone(UTC) if payment.paid_at
                   else _local(min(due, today) - timedelta(days=5)))
        session.add(Payment(bill_id=bill.id, customer_id=customer.id, amount=amount,
                            channel=PaymentChannel(payment.channel), paid_at=paid_at,
                            idempotency_key=f"eval-{bill.bill_no}-{number}",
                            external_ref=f"EVAL{bill.id:06d}{number:02d}",
                            status=PaymentStatus(payment.status)))
        if payment.status == "succeeded":
            paid += amount
    if spec.status == "issued" and paid > 0:
        bill.status = BillStatus.PAID if paid >= bill.amount else BillStatus.PARTIALLY_PAID
    session.flush()
    return BuiltBill(customer_key=key, period=spec.period, computed=computed, bill_id=bill.id,
                     bill_no=bill.bill_no, due_date=due)
