"""Power-factor adjustment (功率因数调整电费, 〔83〕水电财字第215号).

A user who draws much reactive power loads the grid without buying more kWh, so the monthly
power factor moves the bill up or down by a percentage from one of three tables. The base is the
basic charge plus every energy-related charge, never government funds.
"""

from __future__ import annotations

from decimal import Decimal

from billing_core.errors import InvalidRequestError
from billing_core.money import round_half_up
from billing_core.tariffs.library import PowerFactor, PowerFactorTable

STEP = Decimal("0.01")


def power_factor(active_kwh: Decimal, reactive_kvarh: Decimal, decimals: int = 2) -> Decimal | None:
    """PF = kWh / √(kWh² + kvarh²), rounded half-up; None when there was no energy at all."""
    if active_kwh < 0 or reactive_kvarh < 0:
        raise InvalidRequestError("有功、无功电量不能为负数", field="usage.reactive_kvarh")
    apparent = (active_kwh * active_kwh + reactive_kvarh * reactive_kvarh).sqrt()
    if apparent == 0:
        return None
    return round_half_up(active_kwh / apparent, decimals)


def normalise_standard(standard: Decimal) -> str:
    """'0.9' and '0.90' name the same table."""
    return str(round_half_up(standard, 2))


_POINTS_CACHE: dict[int, tuple[PowerFactorTable, dict[Decimal, Decimal], Decimal, Decimal, Decimal]] = {}


def _points(table: PowerFactorTable) -> tuple[dict[Decimal, Decimal], Decimal, Decimal, Decimal]:
    """The table as a dict plus its ends, built once per loaded table (tables are immutable)."""
    cached = _POINTS_CACHE.get(id(table))
    if cached is None or cached[0] is not table:
        points = {pf: pct for pf, pct in table.points}
        cached = (table, points, max(points), min(points), points[min(points)])
        _POINTS_CACHE[id(table)] = cached
    return cached[1], cached[2], cached[3], cached[4]


def adjustment_percent(table: PowerFactorTable, pf: Decimal) -> Decimal:
    """The table's percentage for a (rounded) PF: negative = credit, positive = surcharge.

    Above the highest listed PF the top credit holds; below the lowest listed point each 0.01
    adds the table's closing step (2 % in all three tables).
    """
    points, highest, lowest, lowest_percent = _points(table)
    if pf >= highest:
        return points[highest]
    if pf in points:
        return points[pf]
    if pf < lowest:
        steps = ((lowest - pf) / STEP).to_integral_value()
        return lowest_percent + steps * table.below_lowest_step_percent
    raise ValueError(f"power factor {pf} must be rounded to 0.01 before the lookup")


def table_for(data: PowerFactor, standard: Decimal) -> PowerFactorTable:
    """The table for a customer's standard, or an error naming the attribute."""
    key = normalise_standard(standard)
    table = data.tables.get(key)
    if table is None:
        raise InvalidRequestError(
            f"功率因数考核标准 {standard} 无对应调整表（可选：{'、'.join(sorted(data.tables))}）",
            field="attributes.pf_standard",
        )
    return table
