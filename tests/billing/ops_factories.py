"""Small builders shared by the billing-operations tests (bills, lines) — real types, no mocks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_core.bill_types import ComputedBill, LineItem
from billing_core.money import to_fen


def line(code: str, quantity: str, price: str, unit: str = "kWh", amount: str | None = None) -> LineItem:
    q, p = Decimal(quantity), Decimal(price)
    return LineItem(
        code=code,
        name=f"{code}电费",
        quantity=q,
        unit=unit,
        unit_price=p,
        amount=Decimal(amount) if amount is not None else to_fen(q * p),
        tariff_version="test@2026-01-01",
        source="测试",
        explanation="测试行",
    )


def bill(
    lines: list[LineItem],
    kwh: str | None = None,
    start: date = date(2026, 7, 1),
    end: date = date(2026, 7, 31),
    total: str | None = None,
) -> ComputedBill:
    total_kwh = Decimal(kwh) if kwh is not None else sum(
        (item.quantity for item in lines if item.unit == "kWh"), Decimal("0")
    )
    return ComputedBill(
        account_no="440100000001",
        period_start=start,
        period_end=end,
        total_kwh=total_kwh,
        lines=lines,
        total=Decimal(total) if total is not None else sum((item.amount for item in lines), Decimal("0")),
    )


def residential_july(kwh_tier1: str = "260", kwh_tier2: str = "140") -> ComputedBill:
    """The reference example: 400 kWh in July → 153.11 + 89.44 = 242.55 元."""
    return bill([line("tier_1", kwh_tier1, "0.58886875"), line("tier_2", kwh_tier2, "0.63886875")])


# --- database rows ---------------------------------------------------------------------------

from datetime import timedelta  # noqa: E402

from sqlalchemy.orm import Session  # noqa: E402

from billing_core.bill_types import CustomerCategory  # noqa: E402
from billing_core.db.models import Bill, BillStatus, Customer, Meter, Reading, ReadingRegister  # noqa: E402


def add_customer(
    session: Session,
    n: int,
    *,
    category: CustomerCategory = CustomerCategory.RESIDENTIAL,
    phone: str | None = "13800000000",
    openid: str | None = None,
    withholding: bool = False,
    prepaid: str = "0",
    **attributes: object,
) -> Customer:
    customer = Customer(
        account_no=f"4401{n:08d}",
        name=f"测试客户{n}",
        phone=phone,
        address=f"广州市天河区测试路{n}号",
        category=category,
        wechat_openid=openid,
        withholding_agreement=withholding,
        prepaid_balance=Decimal(prepaid),
        **attributes,
    )
    session.add(customer)
    session.flush()
    return customer


def add_meter(session: Session, customer: Customer, *, multiplier: str = "1", installed_on: date = date(2025, 1, 1),
              replaces: Meter | None = None) -> Meter:
    meter = Meter(asset_no=f"M{customer.account_no}{len(customer.meters)}", customer_id=customer.id,
                  multiplier=Decimal(multiplier), installed_on=installed_on,
                  replaced_meter_id=replaces.id if replaces else None)
    session.add(meter)
    session.flush()
    return meter


def add_daily_readings(session: Session, meter: Meter, first: date, last: date, start_value: str,
                       per_day: str, overrides: dict[date, str] | None = None) -> None:
    """End-of-day active-total readings from `first` to `last`, rising by `per_day` a day."""
    value = Decimal(start_value)
    day = first
    overrides = overrides or {}
    while day <= last:
        shown = Decimal(overrides[day]) if day in overrides else value
        session.add(Reading(meter_id=meter.id, read_date=day, register=ReadingRegister.ACTIVE_TOTAL, value=shown))
        value += Decimal(per_day)
        day += timedelta(days=1)
    session.flush()


def add_bill(session: Session, customer: Customer, period: str, kwh: str, amount: str,
             status: BillStatus = BillStatus.PAID, bill_no: str | None = None,
             due_date: date | None = None) -> Bill:
    year, month = int(period[:4]), int(period[5:])
    start = date(year, month, 1)
    end = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1))
    bill = Bill(customer_id=customer.id, period=period, period_start=start, period_end=end,
                total_kwh=Decimal(kwh), amount=Decimal(amount), status=status, bill_no=bill_no,
                due_date=due_date)
    session.add(bill)
    session.flush()
    return bill
