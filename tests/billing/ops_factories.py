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
