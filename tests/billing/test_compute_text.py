"""How bills write prices and quantities: the tariff's precision, no padding from the inputs."""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.bill_types import BillRequest, ComputedBill
from billing_core.tariffs.compute import compute_bill
from billing_core.number_text import decimals, price_text, quantity_text, tidy_price, tidy_quantity
from billing_core.tariffs.library import AgencyPurchase, get_library
from tests.billing.tariff_helpers import one, residential, two_part

D = Decimal
OCT = (date(2025, 10, 1), date(2025, 10, 31))  # the agency energy price that month is 0.4105
TOU = {"peak": "3000.000", "flat": "5000.000", "valley": "2000.000"}


def _energy(month: str = "2025-10") -> Decimal:
    version = next(v for v in get_library().versions("gd-agency-purchase") if v.version == month)
    assert isinstance(version.data, AgencyPurchase)
    return version.data.prices["two_part"]["1-10kV"].energy


def _bills() -> list[ComputedBill]:
    """A spread of bills whose inputs carry needless zeros."""
    farm = BillRequest.model_validate(
        {"attributes": {"category": "agricultural", "capacity_kva": "200.00", "pf_standard": "0.80"},
         "period_start": OCT[0], "period_end": OCT[1],
         "usage": {"total_kwh": "5000.000", "reactive_kvarh": "3000.00"}, "back_charge_kwh": "20.50"}
    )
    resident_tou = BillRequest.model_validate(
        {"attributes": {"category": "residential", "residential_tou": True}, "period_start": OCT[0],
         "period_end": OCT[1], "usage": {"tou": {"peak": "150.000", "flat": "200.000", "valley": "300.000"}},
         "back_charge_kwh": "10.0"}
    )
    return [
        compute_bill(two_part(TOU, *OCT, agency_price_multiplier="1.000", kvarh="4000.000", max_demand_kw="600.0")),
        compute_bill(two_part(TOU, *OCT, agency_price_multiplier="1.5", mode="capacity", capacity_kva="630.00")),
        compute_bill(two_part(TOU, date(2025, 10, 15), date(2025, 11, 14), mode="capacity", capacity_kva="630.00")),
        compute_bill(residential("400.000", date(2026, 7, 1), date(2026, 7, 31), back_charge_kwh="12.000")),
        compute_bill(resident_tou),
        compute_bill(farm),
    ]


def test_every_line_explains_its_stored_unit_price_exactly() -> None:
    for bill in _bills():
        for line in bill.lines:
            if line.unit == "%":
                continue
            written = format(line.unit_price, "f")
            assert f"{written}元" in line.explanation, (line.code, written, line.explanation)
            assert decimals(line.unit_price) >= 2, (line.code, line.unit_price)


def test_no_needless_zeros_in_any_explanation_or_note() -> None:
    quantity = re.compile(r"(\d+\.\d+)(?=千瓦时|千伏安|千瓦|千乏时|个月|%)")
    long_price = re.compile(r"\d+\.\d{5,}")
    for bill in _bills():
        for text in [line.explanation for line in bill.lines] + bill.notes:
            for number in quantity.findall(text):
                assert not number.endswith("0"), (number, text)
            for number in long_price.findall(text):  # more decimals than any tariff's 4: only digits that count
                assert not number.endswith("0"), (number, text)


def test_a_multiplier_of_1_000_writes_the_tariffs_own_price() -> None:
    plain = compute_bill(two_part(TOU, *OCT))
    padded = compute_bill(two_part(TOU, *OCT, agency_price_multiplier="1.000"))
    assert [(str(l.unit_price), l.explanation) for l in padded.lines] == [
        (str(l.unit_price), l.explanation) for l in plain.lines
    ]
    flat = one(padded, "energy_flat")
    assert str(_energy()) == "0.4105"
    assert str(flat.unit_price) == "0.4105" and "0.4105000" not in flat.explanation
    assert "平段0.4105元" in one(padded, "energy_peak").explanation


def test_a_multiplier_of_1_5_keeps_the_digit_that_carries_value() -> None:
    bill = compute_bill(two_part(TOU, *OCT, agency_price_multiplier="1.50"))
    exact = _energy() * D("1.5")  # 0.61575: five decimals, the last one is money
    assert exact == D("0.61575")
    peak = one(bill, "energy_peak")
    assert f"平段{exact}元（代理购电价格×1.5）" in peak.explanation
    assert peak.unit_price == (exact * D("1.7")).quantize(D("0.0001"), rounding=ROUND_HALF_UP)
    assert str(peak.unit_price) in peak.explanation
    assert "×1.50" not in peak.explanation


def test_capacity_of_630_00_kva_is_written_630_and_billed_the_same() -> None:
    bill = compute_bill(two_part(TOU, *OCT, mode="capacity", capacity_kva="630.00"))
    line = one(bill, "basic_capacity")
    assert "630千伏安" in line.explanation and "630.00" not in line.explanation
    assert str(line.unit_price) == "22.60"  # the tariff says 22.6; never fewer than 2 decimals
    assert line.amount == D("630") * D("22.6") == D("14238.00")


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        ("0.4105000", 4, "0.4105"),
        ("0.4070", 4, "0.4070"),  # the tariff's own precision is kept
        ("0.61575", 4, "0.61575"),  # never rounded
        ("22.6", 1, "22.60"),
        ("22", 0, "22.00"),
        ("0.58886875", 8, "0.58886875"),
        ("0.60000000", 8, "0.60000000"),
        ("0.05", 2, "0.05"),
        ("0E-8", 8, "0.00000000"),
        ("0.00000001", 8, "0.00000001"),  # plain digits, not 1E-8
        ("-0.0500", 2, "-0.05"),
    ],
)
def test_price_text(value: str, places: int, expected: str) -> None:
    assert price_text(D(value), places) == expected
    assert tidy_price(D(value), places) == D(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("400.000", "400"), ("4E+2", "400"), ("12.50", "12.5"), ("630.00", "630"), ("0.000", "0"),
     ("-300.0", "-300"), ("0.001", "0.001"), ("1.000", "1")],
)
def test_quantity_text(value: str, expected: str) -> None:
    assert quantity_text(D(value)) == expected
    assert tidy_quantity(D(value)) == D(value)


@given(
    value=st.decimals(min_value=-10**6, max_value=10**6, places=10, allow_nan=False, allow_infinity=False),
    places=st.integers(0, 8),
)
def test_tidy_price_never_changes_the_value_and_is_stable(value: Decimal, places: int) -> None:
    tidy = tidy_price(value, places)
    assert tidy == value
    assert decimals(tidy) >= max(2, places)
    assert tidy_price(tidy, places) == tidy and str(tidy_price(tidy, places)) == str(tidy)
    if decimals(tidy) > max(2, places):
        assert not format(tidy, "f").endswith("0")


@given(
    value=st.one_of(
        st.decimals(min_value=-10**9, max_value=10**9, places=6, allow_nan=False, allow_infinity=False),
        st.integers(-10**6, 10**6).map(lambda n: D(n).scaleb(3)),  # 4E+5 and friends
        st.decimals(allow_nan=False, allow_infinity=False),  # any precision at all: still exact
    )
)
def test_quantity_text_is_the_value_without_needless_zeros(value: Decimal) -> None:
    text = quantity_text(value)
    assert D(text) == value and "E" not in text
    assert not ("." in text and text.endswith("0")) and not text.endswith(".")
    assert tidy_quantity(value) == value
