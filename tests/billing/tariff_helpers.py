"""Request builders for the tariff-engine tests: short, explicit, no hidden defaults that matter."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from billing_core.bill_types import BillRequest, ComputedBill, LineItem


def residential(kwh: str | int, start: date, end: date, household: str = "ordinary", **extra: Any) -> BillRequest:
    return BillRequest.model_validate(
        {
            "attributes": {"category": "residential", "household_type": household},
            "period_start": start,
            "period_end": end,
            "usage": {"total_kwh": str(kwh)},
            **extra,
        }
    )


def two_part(
    tou: dict[str, str | int],
    start: date,
    end: date,
    *,
    mode: str = "demand",
    contract_kw: str = "500",
    max_demand_kw: str = "450",
    capacity_kva: str = "800",
    kvarh: str | None = "0",
    pf_standard: str | None = "0.90",
    daily: list[dict[str, Any]] | None = None,
    **attrs: Any,
) -> BillRequest:
    usage: dict[str, Any] = {"tou": {k: str(v) for k, v in tou.items()}, "max_demand_kw": max_demand_kw}
    if kvarh is not None:
        usage["reactive_kvarh"] = kvarh
    if daily is not None:
        usage = {"daily": daily, "reactive_kvarh": kvarh, "max_demand_kw": max_demand_kw}
    return BillRequest.model_validate(
        {
            "attributes": {
                "category": "ci_two_part",
                "purchase_mode": "agency",
                "voltage_level": "1-10kV",
                "basic_charge_mode": mode,
                "contracted_demand_kw": contract_kw,
                "capacity_kva": capacity_kva,
                "pf_standard": pf_standard,
                **attrs,
            },
            "period_start": start,
            "period_end": end,
            "usage": usage,
        }
    )


def lines(bill: ComputedBill, code: str) -> list[LineItem]:
    return [line for line in bill.lines if line.code == code]


def one(bill: ComputedBill, code: str) -> LineItem:
    found = lines(bill, code)
    assert len(found) == 1, f"expected one {code} line, got {[l.code for l in bill.lines]}"
    return found[0]


def amount(bill: ComputedBill, code: str) -> Decimal:
    return sum((line.amount for line in lines(bill, code)), Decimal("0"))
