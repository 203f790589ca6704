"""What-if bills for insights: a kWh figure (a forecast, a shifted load) priced by `compute_bill`.

The insights never multiply prices themselves: a forecast or a piece of advice becomes a
`Usage` with the registers the customer's tariff needs (TOU split, reactive energy, maximum
demand in the customer's own proportions) and the billing core computes the bill. Identical
requests give identical bills, so they are cached: 100,000 forecasts ask for far fewer distinct bills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np

from billing_core.bill_types import (
    BasicChargeMode,
    BillRequest,
    ComputedBill,
    CustomerCategory,
    InlinePrices,
    PurchaseMode,
    TariffAttributes,
    TouUsage,
    Usage,
)
from billing_core.tariffs.compute import compute_bill
from billing_core.tariffs.library import AgencyPurchase, get_library

KWH_STEP = Decimal("0.001")
SHARE_STEP = Decimal("0.0001")
CI_AGENCY = "gd-agency-purchase"
ZERO = Decimal("0")


@dataclass(frozen=True)
class UsageShape:
    """How a customer's kWh split: TOU shares (尖, 峰, 平, 谷), kvarh per kWh, the maximum demand."""

    tou_shares: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
    reactive_per_kwh: Decimal | None = None
    max_demand_kw: Decimal | None = None


def _decimal(value: float, step: Decimal) -> Decimal:
    return Decimal(repr(float(value))).quantize(step, rounding=ROUND_HALF_UP)


def shape_from_arrays(kwh: np.ndarray, tou: np.ndarray | None, reactive: np.ndarray | None,
                      max_demand: np.ndarray | None) -> UsageShape:
    """The shape of a stretch of days (rows of the daily arrays); unknown days are skipped."""
    total = float(np.nansum(kwh))
    shares = None
    if tou is not None:
        sums = np.nansum(tou, axis=0)
        whole = float(sums.sum())
        if whole > 0:
            first = [_decimal(s / whole, SHARE_STEP) for s in sums[:3]]
            shares = (first[0], first[1], first[2], Decimal(1) - sum(first, ZERO))
        else:
            shares = (ZERO, ZERO, Decimal(1), ZERO)
    reactive_per_kwh = None
    if reactive is not None and total > 0 and not np.isnan(reactive).all():
        reactive_per_kwh = _decimal(float(np.nansum(reactive)) / total, SHARE_STEP)
    demand = None
    if max_demand is not None and not np.isnan(max_demand).all():
        demand = _decimal(float(np.nanmax(max_demand)), KWH_STEP)
    return UsageShape(shares, reactive_per_kwh, demand)


def usage_of(total_kwh: Decimal, shape: UsageShape, *, needs_tou: bool, needs_reactive: bool,
             needs_demand: bool) -> Usage:
    """A `Usage` of `total_kwh` in the customer's proportions (TOU parts add up to the total exactly)."""
    tou = None
    if shape.tou_shares is not None and needs_tou:
        parts = [(total_kwh * s).quantize(KWH_STEP, rounding=ROUND_HALF_UP) for s in shape.tou_shares[:3]]
        parts.append(total_kwh - sum(parts, ZERO))
        if parts[3] < 0:  # rounding never takes more than 0.003 kWh; give it back from the largest part
            biggest = max(range(3), key=lambda i: parts[i])
            parts[biggest] += parts[3]
            parts[3] = ZERO
        tou = TouUsage(critical_peak=parts[0], peak=parts[1], flat=parts[2], valley=parts[3])
    reactive = None
    if needs_reactive:
        ratio = shape.reactive_per_kwh if shape.reactive_per_kwh is not None else ZERO
        reactive = (total_kwh * ratio).quantize(KWH_STEP, rounding=ROUND_HALF_UP)
    demand = shape.max_demand_kw if needs_demand else None
    if needs_demand and demand is None:
        demand = ZERO
    return Usage(total_kwh=None if tou else total_kwh, tou=tou, reactive_kvarh=reactive, max_demand_kw=demand)


def needs(attributes: TariffAttributes) -> dict[str, bool]:
    """Which registers the customer's tariff bills on."""
    ci = attributes.category in (CustomerCategory.CI_SINGLE, CustomerCategory.CI_TWO_PART)
    return {
        "needs_tou": ci or attributes.residential_tou,
        "needs_reactive": attributes.pf_standard is not None,
        "needs_demand": attributes.category is CustomerCategory.CI_TWO_PART
        and attributes.basic_charge_mode is BasicChargeMode.DEMAND,
    }


def reference_prices(attributes: TariffAttributes, day: date) -> tuple[InlinePrices | None, str | None]:
    """A market customer's energy price for an estimate: the month's agency-purchase energy price.

    The contract price is not in the billing database, so the estimate says which figure it used.
    """
    if attributes.purchase_mode is not PurchaseMode.MARKET:
        return None, None
    version = get_library().in_force(CI_AGENCY, day)
    data = version.data
    assert isinstance(data, AgencyPurchase)
    kind = "two_part" if attributes.category is CustomerCategory.CI_TWO_PART else "single"
    components = data.prices[kind].get(attributes.voltage_level)
    if components is None:
        return None, None
    price = components.energy
    note = (f"市场化用户的合同电价不在账务系统中，本估算按{version.key}代理购电电能量价格"
            f"{price}元/千瓦时测算，实际以交易合同价格为准。")
    return InlinePrices(energy_price=price), note


@lru_cache(maxsize=32_768)  # ~ a few KB a bill: bounded for a long-running server
def what_if_bill(attributes: TariffAttributes, start: date, end: date, usage: Usage,
                 prices: InlinePrices | None = None) -> ComputedBill:
    """The bill `compute_bill` gives for this usage (no account: a what-if, never stored)."""
    return compute_bill(BillRequest(attributes=attributes, period_start=start, period_end=end, usage=usage,
                                    prices=prices))
