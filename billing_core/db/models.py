"""The billing domain tables: customers, meters, readings, bills, payments, 退补, work orders.

Money is `Numeric(14, 2)`, energy `Numeric(16, 3)`, prices `Numeric(14, 8)` — never Float, so
a bill read back from the database is the bill that was computed. Enumerations are stored as
their string values (portable, readable in SQL) and validated by SQLAlchemy on the way in.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, validates

from billing_core.bill_types import (
    BasicChargeMode,
    ComputedBill,
    CustomerCategory,
    HouseholdType,
    LineItem,
    PurchaseMode,
    TariffAttributes,
)
from billing_core.db.engine import Base, utc_now

MONEY = Numeric(14, 2)
KWH = Numeric(16, 3)
PRICE = Numeric(14, 8)
QUANTITY = Numeric(18, 6)  # a bill line's quantity: kWh, kVA, kW or a base amount in 元

ACCOUNT_NO_PATTERN = re.compile(r"^\d{12}$")
PERIOD_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _enum(enum_cls: type[StrEnum], length: int = 32) -> Enum:
    """A portable string column holding `enum_cls` values (VARCHAR, not a native PG enum).

    Native enums need ALTER TYPE migrations for every new value; a VARCHAR does not, and
    SQLAlchemy still refuses values outside the enum when writing.
    """
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        length=length,
        values_callable=lambda cls: [member.value for member in cls],
    )


class ReadingRegister(StrEnum):
    ACTIVE_TOTAL = "active_total"  # 正向有功总
    CRITICAL_PEAK = "critical_peak"  # 尖
    PEAK = "peak"  # 峰
    FLAT = "flat"  # 平
    VALLEY = "valley"  # 谷
    REACTIVE_TOTAL = "reactive_total"  # 无功总 (kvarh)
    MAX_DEMAND = "max_demand"  # 最大需量 (kW, the day's maximum; not cumulative)


class ReadingSource(StrEnum):
    DAILY = "daily"  # pushed by the collection system (日冻结)
    MANUAL = "manual"  # read on site, e.g. the final reading at a meter replacement
    ESTIMATED = "estimated"


class BillStatus(StrEnum):
    COMPUTED = "computed"
    HELD = "held"  # held back from issue by a verification rule until reviewed
    ISSUED = "issued"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    CANCELLED = "cancelled"


class PaymentChannel(StrEnum):
    WECHAT_PAY = "wechat_pay"
    ALIPAY = "alipay"
    BANK_WITHHOLDING = "bank_withholding"  # 代扣
    COUNTER = "counter"  # 营业厅柜台
    PREPAID = "prepaid"  # 预存余额抵扣
    BANK_TRANSFER = "bank_transfer"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


class AdjustmentStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"  # billed on a later bill
    REJECTED = "rejected"


class WorkOrderKind(StrEnum):
    REVIEW = "review"  # 电费复核
    DISPUTE = "dispute"
    COMPLAINT = "complaint"
    REFUND = "refund"
    RECONCILIATION = "reconciliation"  # 对账异常
    DUNNING_CALL = "dunning_call"  # 催费外呼
    METER_CHECK = "meter_check"


class WorkOrderStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class WorkOrderPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Customer(Base):
    """A billing account (户号) with the attributes that select its tariffs."""

    __tablename__ = "customers"
    __table_args__ = (CheckConstraint("length(account_no) = 12", name="account_no_12_digits"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_no: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(20))
    id_last4: Mapped[str | None] = mapped_column(String(4))
    address: Mapped[str] = mapped_column(String(200))
    category: Mapped[CustomerCategory] = mapped_column(_enum(CustomerCategory))
    household_type: Mapped[HouseholdType] = mapped_column(
        _enum(HouseholdType), default=HouseholdType.ORDINARY
    )
    residential_tou: Mapped[bool] = mapped_column(Boolean, default=False)
    voltage_level: Mapped[str] = mapped_column(String(16), default="<1kV")
    capacity_kva: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    basic_charge_mode: Mapped[BasicChargeMode | None] = mapped_column(_enum(BasicChargeMode))
    contracted_demand_kw: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    pf_standard: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    purchase_mode: Mapped[PurchaseMode] = mapped_column(_enum(PurchaseMode), default=PurchaseMode.CATALOG)
    agency_price_multiplier: Mapped[Decimal] = mapped_column(Numeric(6, 3), default=Decimal("1"))
    region: Mapped[str] = mapped_column(String(32), default="guangzhou")
    wechat_openid: Mapped[str | None] = mapped_column(String(64), unique=True)
    withholding_agreement: Mapped[bool] = mapped_column(Boolean, default=False)  # 代扣协议
    prepaid_balance: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    meters: Mapped[list[Meter]] = relationship(back_populates="customer", order_by="Meter.installed_on")
    bills: Mapped[list[Bill]] = relationship(back_populates="customer", order_by="Bill.period")

    @validates("account_no")
    def _check_account_no(self, _key: str, value: str) -> str:
        if not isinstance(value, str) or not ACCOUNT_NO_PATTERN.match(value):
            raise ValueError(f"account_no: {value!r} is not a 12-digit 户号")
        return value

    def tariff_attributes(self) -> TariffAttributes:
        """The customer's billing parameters in the form `compute_bill` takes."""
        return tariff_attributes_of({name: getattr(self, name) for name in TariffAttributes.model_fields})


def _plain(value: Decimal | None) -> Decimal | None:
    """630.00 → 630, 1.500 → 1.5: the same number whatever column scale it was stored with."""
    if value is None:
        return None
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def tariff_attributes_of(values: dict[str, Any]) -> TariffAttributes:
    """`TariffAttributes` from customer column values, numbers in one canonical form.

    A Decimal read back from Numeric(12, 2) is 630.00 while the same customer built in memory
    says 630; bills quote these numbers in their explanations, so both must read the same.
    PF standards keep two decimals (0.90), as the tariff tables write them.
    """
    fields = dict(values)
    for name in ("capacity_kva", "contracted_demand_kw", "agency_price_multiplier"):
        fields[name] = _plain(fields.get(name))
    if fields.get("pf_standard") is not None:
        fields["pf_standard"] = fields["pf_standard"].quantize(Decimal("0.01"))
    if fields.get("agency_price_multiplier") is None:
        fields.pop("agency_price_multiplier", None)
    return TariffAttributes(**fields)


class Meter(Base):
    """An energy meter at a customer. A replacement is a new meter pointing at the old one."""

    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_no: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # 综合倍率 = CT ratio × PT ratio; metered kWh = (current − previous) × multiplier.
    multiplier: Mapped[Decimal] = mapped_column(Numeric(12, 4), default=Decimal("1"))
    installed_on: Mapped[date] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date)
    # Set on the new meter of a replacement (换表): the meter it replaced.
    replaced_meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    # 拆表示数: the old meter's active-total reading when it was removed (from the work slip).
    final_reading: Mapped[Decimal | None] = mapped_column(KWH)

    customer: Mapped[Customer] = relationship(back_populates="meters")
    replaced_meter: Mapped[Meter | None] = relationship(remote_side=[id])


class Reading(Base):
    """One register value of one meter for one day (the end-of-day value, 日冻结示数)."""

    __tablename__ = "readings"
    __table_args__ = (UniqueConstraint("meter_id", "read_date", "register"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    read_date: Mapped[date] = mapped_column(Date)
    register: Mapped[ReadingRegister] = mapped_column(_enum(ReadingRegister))
    value: Mapped[Decimal] = mapped_column(KWH)
    source: Mapped[ReadingSource] = mapped_column(_enum(ReadingSource), default=ReadingSource.DAILY)


class Bill(Base):
    """A customer's bill for one month; the lines explain the amount."""

    __tablename__ = "bills"
    __table_args__ = (
        UniqueConstraint("customer_id", "period"),
        CheckConstraint("period_end >= period_start", name="period_in_order"),
        Index("ix_bills_period_status", "period", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(7))  # 'YYYY-MM'
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    total_kwh: Mapped[Decimal] = mapped_column(KWH)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[BillStatus] = mapped_column(_enum(BillStatus), default=BillStatus.COMPUTED)
    bill_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    issued_at: Mapped[datetime | None] = mapped_column()
    due_date: Mapped[date | None] = mapped_column(Date)
    tariff_versions: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(default=utc_now)

    customer: Mapped[Customer] = relationship(back_populates="bills")
    lines: Mapped[list[BillLine]] = relationship(
        back_populates="bill", order_by="BillLine.position", cascade="all, delete-orphan"
    )

    @validates("period")
    def _check_period(self, _key: str, value: str) -> str:
        if not isinstance(value, str) or not PERIOD_PATTERN.match(value):
            raise ValueError(f"period: {value!r} is not a month 'YYYY-MM'")
        return value

    def to_computed(self, account_no: str | None = None) -> ComputedBill:
        """The stored bill in the `compute_bill` contract (to explain or compare it)."""
        return ComputedBill(
            account_no=account_no if account_no is not None else self.customer.account_no,
            period_start=self.period_start,
            period_end=self.period_end,
            total_kwh=self.total_kwh,
            lines=[line.to_line_item() for line in self.lines],
            total=self.amount,
            notes=list(self.notes or []),
            tariff_versions=list(self.tariff_versions or []),
        )


class BillLine(Base):
    """One line of a bill: every field of `bill_types.LineItem`, in bill order."""

    __tablename__ = "bill_lines"
    __table_args__ = (UniqueConstraint("bill_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit: Mapped[str] = mapped_column(String(16))
    unit_price: Mapped[Decimal] = mapped_column(PRICE)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    tariff_version: Mapped[str] = mapped_column(String(96))
    source: Mapped[str] = mapped_column(String(200))
    explanation: Mapped[str] = mapped_column(Text)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)

    bill: Mapped[Bill] = relationship(back_populates="lines")

    def to_line_item(self) -> LineItem:
        return LineItem(
            code=self.code,
            name=self.name,
            quantity=self.quantity,
            unit=self.unit,
            unit_price=self.unit_price,
            amount=self.amount,
            tariff_version=self.tariff_version,
            source=self.source,
            explanation=self.explanation,
            period_start=self.period_start,
            period_end=self.period_end,
        )


class Payment(Base):
    """Money received for a bill (or a prepaid top-up, without a bill). One key, one payment."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payments_bill_id", "bill_id"),
        Index("ix_payments_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bill_id: Mapped[int | None] = mapped_column(ForeignKey("bills.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    channel: Mapped[PaymentChannel] = mapped_column(_enum(PaymentChannel))
    paid_at: Mapped[datetime] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    external_ref: Mapped[str | None] = mapped_column(String(64))  # the channel's transaction id
    status: Mapped[PaymentStatus] = mapped_column(_enum(PaymentStatus), default=PaymentStatus.SUCCEEDED)


class Adjustment(Base):
    """退补: energy (and money) to charge back (+) or refund (−), reviewed before it is billed."""

    __tablename__ = "adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    bill_id: Mapped[int | None] = mapped_column(ForeignKey("bills.id"))
    kwh: Mapped[Decimal] = mapped_column(KWH, default=Decimal("0"))
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[AdjustmentStatus] = mapped_column(_enum(AdjustmentStatus), default=AdjustmentStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


OPEN_DISPUTE_WHERE = text("kind = 'dispute' AND status IN ('open', 'in_progress')")


class WorkOrder(Base):
    """A task for a person: a bill to review, a dispute, a refund, a reconciliation exception..."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_account_no", "account_no"),
        Index("ix_work_orders_status_kind", "status", "kind"),
        # One open dispute per bill, enforced by the database: SQLite has no row locks, so two
        # simultaneous requests could both pass a check in code; the loser gets an IntegrityError.
        Index("uq_work_orders_one_open_dispute_per_bill", "bill_id", unique=True,
              sqlite_where=OPEN_DISPUTE_WHERE, postgresql_where=OPEN_DISPUTE_WHERE),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    no: Mapped[str] = mapped_column(String(20), unique=True)  # 'WO20261105' + 4-digit sequence
    kind: Mapped[WorkOrderKind] = mapped_column(_enum(WorkOrderKind))
    account_no: Mapped[str | None] = mapped_column(String(12))
    bill_id: Mapped[int | None] = mapped_column(ForeignKey("bills.id"))
    period: Mapped[str | None] = mapped_column(String(7))
    status: Mapped[WorkOrderStatus] = mapped_column(_enum(WorkOrderStatus), default=WorkOrderStatus.OPEN)
    priority: Mapped[WorkOrderPriority] = mapped_column(
        _enum(WorkOrderPriority), default=WorkOrderPriority.NORMAL
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(32))  # where it came from: wechat, phone, system...
    sla_due_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    resolved_at: Mapped[datetime | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def next_work_order_no(session: Session, on: date) -> str:
    """The next free work-order number of a day: 'WO' + YYYYMMDD + a 4-digit sequence.

    Two writers racing for the same number are stopped by the unique constraint on `no`;
    the loser retries with a fresh number.
    """
    prefix = f"WO{on:%Y%m%d}"
    # Longest first, then highest: past 9999 a day the sequence grows a digit, and a plain string
    # max would keep answering '...9999' and hand out the same next number forever.
    last = session.scalar(
        select(WorkOrder.no)
        .where(WorkOrder.no.like(f"{prefix}%"))
        .order_by(func.length(WorkOrder.no).desc(), WorkOrder.no.desc())
        .limit(1)
    )
    sequence = int(last[len(prefix) :]) + 1 if last else 1
    return f"{prefix}{sequence:04d}"


def bill_from_computed(customer_id: int, period: str, computed: ComputedBill) -> Bill:
    """A `Bill` row (status computed, with its lines) holding exactly what `compute_bill` returned."""
    return Bill(
        customer_id=customer_id,
        period=period,
        period_start=computed.period_start,
        period_end=computed.period_end,
        total_kwh=computed.total_kwh,
        amount=computed.total,
        status=BillStatus.COMPUTED,
        tariff_versions=list(computed.tariff_versions),
        notes=list(computed.notes),
        lines=[
            BillLine(position=position, **line.model_dump())
            for position, line in enumerate(computed.lines, start=1)
        ],
    )
