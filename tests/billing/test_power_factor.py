"""Power-factor adjustment: the formula, half-up rounding, every point of the three tables, the base."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.tariffs.compute import compute_bill
from billing_core.errors import InvalidRequestError
from billing_core.money import to_fen
from billing_core.tariffs.power_factor import adjustment_percent, power_factor, table_for
from billing_core.tariffs.library import PowerFactor, get_library
from tests.billing.tariff_helpers import one, two_part

D = Decimal
CENT = D("0.01")


def _data() -> PowerFactor:
    data = get_library().in_force("gd-power-factor", date(2025, 10, 1)).data
    assert isinstance(data, PowerFactor)
    return data


def reference_percent(standard: str, pf: Decimal) -> Decimal:
    """The reference's table (tariffs-guangdong.md §4), written out from its wording."""
    steps_below = int((D(standard) - pf) / CENT)
    if standard == "0.90":
        credits = {D("0.91"): D("-0.15"), D("0.92"): D("-0.30"), D("0.93"): D("-0.45"), D("0.94"): D("-0.60")}
        if pf >= D("0.95"):
            return D("-0.75")
        if pf > D("0.90"):
            return credits[pf]
    elif standard == "0.85":
        if pf >= D("0.94"):
            return D("-1.10")
        if pf > D("0.90"):
            return {D("0.91"): D("-0.65"), D("0.92"): D("-0.80"), D("0.93"): D("-0.95")}[pf]
        if pf > D("0.85"):
            return -(pf - D("0.85")) / CENT * D("0.1")
    else:
        if pf >= D("0.92"):
            return D("-1.30")
        if pf == D("0.91"):
            return D("-1.15")
        if pf > D("0.80"):
            return -(pf - D("0.80")) / CENT * D("0.1")
    if steps_below <= 0:
        return D("0")
    if steps_below <= 20:  # +0.5 % per 0.01 down to 10 %
        return D("0.5") * steps_below
    if steps_below <= 25:  # +1 % per 0.01 for the next five points, to 15 %
        return D("10") + (steps_below - 20)
    return D("15") + 2 * (steps_below - 25)  # +2 % per 0.01 further down


ALL_POINTS = [(s, D(p) / 100) for s in ("0.90", "0.85", "0.80") for p in range(40, 101)]


@pytest.mark.parametrize(("standard", "pf"), ALL_POINTS, ids=[f"{s}@{p}" for s, p in ALL_POINTS])
def test_every_point_of_the_tables(standard: str, pf: Decimal) -> None:
    table = table_for(_data(), D(standard))
    assert adjustment_percent(table, pf) == reference_percent(standard, pf)


def test_reference_example_and_landmarks() -> None:
    data = _data()
    assert adjustment_percent(table_for(data, D("0.90")), D("0.79")) == D("5.5")
    assert adjustment_percent(table_for(data, D("0.9")), D("0.70")) == D("10")
    assert adjustment_percent(table_for(data, D("0.90")), D("0.65")) == D("15")
    assert adjustment_percent(table_for(data, D("0.85")), D("0.65")) == D("10")
    assert adjustment_percent(table_for(data, D("0.80")), D("0.60")) == D("10")
    assert adjustment_percent(table_for(data, D("0.80")), D("0.90")) == D("-1.0")


def test_unknown_standard_names_the_attribute() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        table_for(_data(), D("0.75"))
    assert caught.value.field == "attributes.pf_standard"


def test_pf_formula_and_half_up_rounding() -> None:
    assert power_factor(D("3"), D("4")) == D("0.60")
    assert power_factor(D("100"), D("0")) == D("1.00")
    assert power_factor(D("0"), D("0")) is None
    # 845 / sqrt(845² + 534.76²) = 0.845003…: half-up gives 0.85 where truncation would give 0.84
    assert power_factor(D("845"), D("534.76")) == D("0.85")
    assert power_factor(D("845"), D("534.78")) == D("0.84")  # 0.844994…


@given(
    st.decimals(min_value=1, max_value=10**7, places=3),
    st.decimals(min_value=0, max_value=10**7, places=3),
)
def test_pf_is_a_two_decimal_fraction_that_falls_as_reactive_grows(kwh: Decimal, kvarh: Decimal) -> None:
    pf = power_factor(kwh, kvarh)
    assert pf is not None and D("0") <= pf <= D("1") and pf == pf.quantize(CENT)
    more = power_factor(kwh, kvarh + kwh)
    assert more is not None and more <= pf


def _ci(kvarh: str, pf_standard: str | None = "0.90"):
    return compute_bill(
        two_part({"peak": 30000, "flat": 50000, "valley": 20000}, date(2025, 11, 1), date(2025, 11, 30),
                 kvarh=kvarh, pf_standard=pf_standard)
    )


def test_pf_line_uses_basic_plus_energy_charges_and_excludes_funds() -> None:
    bill = _ci("75000")  # PF = 100000 / 125000 = 0.80 → +5 % on the 0.90 table
    pf_line = one(bill, "pf_adjustment")
    funds = one(bill, "government_funds")
    others = [l for l in bill.lines if l.code not in ("pf_adjustment", "government_funds")]
    assert any(l.code.startswith("basic_") for l in others)
    base = sum((l.amount for l in others), D("0"))
    assert pf_line.quantity == base
    assert pf_line.unit_price == D("0.05")
    assert pf_line.amount == to_fen(base * D("0.05"))
    assert funds.amount == to_fen(D("100000") * D("0.02766875"))
    assert bill.total == base + pf_line.amount + funds.amount
    assert "0.80" in pf_line.explanation


def test_good_power_factor_gives_a_credit_and_no_standard_gives_no_line() -> None:
    credit = one(_ci("10000"), "pf_adjustment")  # PF 0.99 → −0.75 %
    assert credit.unit_price == D("-0.0075") and credit.amount < 0
    assert not [l for l in _ci("75000", pf_standard=None).lines if l.code == "pf_adjustment"]


def test_missing_reactive_energy_is_an_error_naming_the_field() -> None:
    request = two_part({"flat": 1000}, date(2025, 11, 1), date(2025, 11, 30), kvarh=None)
    with pytest.raises(InvalidRequestError) as caught:
        compute_bill(request)
    assert caught.value.field == "usage.reactive_kvarh"
