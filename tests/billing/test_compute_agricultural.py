"""Agricultural production bills (农业生产用电): catalog price, PF from 100 kVA at 0.80, funds apart."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from billing_core.bill_types import BillRequest
from billing_core.tariffs.compute import compute_bill
from billing_core.errors import InvalidRequestError, UnknownTariffError
from billing_core.money import to_fen
from billing_core.tariffs.power_factor import adjustment_percent, power_factor, table_for
from billing_core.tariffs.library import Agricultural, GovernmentFunds, PowerFactor, get_library
from tests.billing.tariff_helpers import one

D = Decimal
JUL = (date(2026, 7, 1), date(2026, 7, 31))


def farm(kwh: str = "12000", *, start: date = JUL[0], end: date = JUL[1], usage: dict[str, Any] | None = None,
         **attrs: Any) -> BillRequest:
    return BillRequest.model_validate(
        {
            "attributes": {"category": "agricultural", "voltage_level": "1-10kV", **attrs},
            "period_start": start,
            "period_end": end,
            "usage": usage if usage is not None else {"total_kwh": kwh},
        }
    )


def _tariff(day: date = JUL[0]) -> Agricultural:
    data = get_library().in_force("gd-agricultural", day).data
    assert isinstance(data, Agricultural)
    return data


def _funds_rate(day: date = JUL[0]) -> Decimal:
    data = get_library().in_force("gd-government-funds", day).data
    assert isinstance(data, GovernmentFunds)
    return data.rates["agricultural"]


def test_small_farm_is_billed_line_by_line_at_the_catalog_price() -> None:
    bill = compute_bill(farm("3456.5", voltage_level="<1kV"))
    assert [l.code for l in bill.lines] == ["agricultural_energy", "government_funds"]
    energy = one(bill, "agricultural_energy")
    assert energy.quantity == D("3456.5") and energy.unit == "kWh"
    assert energy.unit_price == _tariff().prices["<1kV"]
    assert energy.amount == to_fen(D("3456.5") * _tariff().prices["<1kV"])
    assert energy.tariff_version == "gd-agricultural@2017-07-01"
    funds = one(bill, "government_funds")
    assert funds.quantity == D("3456.5") and funds.unit_price == _funds_rate()
    assert bill.total == energy.amount + funds.amount == sum((l.amount for l in bill.lines), D("0"))
    assert all(l.explanation and l.source for l in bill.lines)
    assert "农业生产" in energy.explanation and "不分时段" in energy.explanation


def test_voltage_level_selects_the_price() -> None:
    prices = {level: one(compute_bill(farm(voltage_level=level)), "agricultural_energy").unit_price
              for level in ("<1kV", "1-10kV", "35kV")}
    assert prices == _tariff().prices
    assert prices["<1kV"] > prices["1-10kV"] > prices["35kV"]


def test_pf_adjustment_at_100_kva_uses_the_0_80_table_and_excludes_funds() -> None:
    kwh, kvarh = D("12000"), D("11000")
    bill = compute_bill(farm(str(kwh), capacity_kva="100", pf_standard="0.80",
                             usage={"total_kwh": str(kwh), "reactive_kvarh": str(kvarh)}))
    assert [l.code for l in bill.lines] == ["agricultural_energy", "pf_adjustment", "government_funds"]
    pf_data = get_library().in_force("gd-power-factor", JUL[1]).data
    assert isinstance(pf_data, PowerFactor)
    pf = power_factor(kwh, kvarh)
    assert pf == D("0.74")
    percent = adjustment_percent(table_for(pf_data, D("0.80")), pf)
    assert percent == D("3.0")  # 0.80 table: +0.5 % per 0.01 below the standard
    pf_line = one(bill, "pf_adjustment")
    energy = one(bill, "agricultural_energy")
    assert pf_line.quantity == energy.amount  # funds are not in the base
    assert pf_line.unit_price == percent / 100
    assert pf_line.amount == to_fen(energy.amount * percent / 100)
    assert "0.80" in pf_line.explanation
    assert bill.total == sum((l.amount for l in bill.lines), D("0"))


def test_a_good_power_factor_earns_the_0_80_tables_credit() -> None:
    bill = compute_bill(farm("10000", capacity_kva="250", pf_standard="0.8",
                             usage={"total_kwh": "10000", "reactive_kvarh": "1000"}))
    pf_line = one(bill, "pf_adjustment")
    assert pf_line.unit_price == D("-0.013")  # PF 1.00 ≥ 0.92 → −1.30 % in the 0.80 table only
    assert pf_line.amount < 0


@pytest.mark.parametrize("capacity", [None, "99.99", "80"])
def test_no_pf_adjustment_below_100_kva(capacity: str | None) -> None:
    bill = compute_bill(farm("12000", capacity_kva=capacity, pf_standard="0.80",
                             usage={"total_kwh": "12000", "reactive_kvarh": "11000"}))
    assert not [l for l in bill.lines if l.code == "pf_adjustment"]
    assert any("不执行功率因数考核" in n for n in bill.notes)


def test_large_farm_without_a_standard_is_not_assessed_but_the_bill_says_so() -> None:
    bill = compute_bill(farm("12000", capacity_kva="315"))
    assert not [l for l in bill.lines if l.code == "pf_adjustment"]
    assert any("应执行功率因数0.80考核" in n for n in bill.notes)


@pytest.mark.parametrize(
    ("attrs", "usage", "field", "error"),
    [
        ({"capacity_kva": "200", "pf_standard": "0.90"}, None, "attributes.pf_standard", InvalidRequestError),
        ({"capacity_kva": "200", "pf_standard": "0.80"}, {"total_kwh": "100"}, "usage.reactive_kvarh", InvalidRequestError),
        ({"voltage_level": "110kV"}, None, "attributes.voltage_level", UnknownTariffError),
        ({"region": "shenzhen"}, None, "attributes.region", UnknownTariffError),
        ({"purchase_mode": "market"}, None, "attributes.purchase_mode", InvalidRequestError),
    ],
)
def test_bad_agricultural_attributes_name_the_field(attrs, usage, field, error) -> None:
    with pytest.raises(error) as caught:
        compute_bill(farm(usage=usage, **attrs))
    assert caught.value.field == field


def test_inline_prices_are_refused_for_a_catalog_customer() -> None:
    request = BillRequest.model_validate({**farm().model_dump(), "prices": {"energy_price": "0.3"}})
    with pytest.raises(InvalidRequestError) as caught:
        compute_bill(request)
    assert caught.value.field == "prices.energy_price"


def test_tou_registers_are_billed_at_the_single_price_and_the_bill_says_tou_is_not_applied() -> None:
    tou = {"critical_peak": "100", "peak": "2000", "flat": "3000", "valley": "4000"}
    bill = compute_bill(farm(usage={"tou": tou}))
    energy = one(bill, "agricultural_energy")
    assert energy.quantity == D("9100")
    assert energy.unit_price == _tariff().prices["1-10kV"]
    assert any("未执行农业分时电价" in n for n in bill.notes)


def test_back_charge_is_at_the_catalog_price_and_inside_the_pf_base() -> None:
    request = farm(capacity_kva="160", pf_standard="0.80", usage={"total_kwh": "5000", "reactive_kvarh": "4000"})
    bill = compute_bill(BillRequest.model_validate({**request.model_dump(), "back_charge_kwh": "-300"}))
    back = one(bill, "back_charge")
    assert back.unit_price == _tariff().prices["1-10kV"] and back.amount < 0
    pf_line = one(bill, "pf_adjustment")
    assert pf_line.quantity == one(bill, "agricultural_energy").amount + back.amount
    assert one(bill, "government_funds").quantity == D("4700")


def test_bill_and_library_flag_the_placeholder_price() -> None:
    bill = compute_bill(farm())
    assert any("未经官方文件完全确认" in n and "gd-agricultural@2017-07-01" in n for n in bill.notes)
    flagged = {(key, field) for key, field, _ in get_library().unconfirmed()}
    for level in _tariff().prices:
        assert ("gd-agricultural@2017-07-01", f"prices.{level}") in flagged
    assert ("gd-government-funds@2017-07-01", "rates.agricultural") in flagged
    version = get_library().in_force("gd-agricultural", JUL[0])
    assert not version.confirmed and "placeholder" in (version.note or "")
    assert "NOT applied" in (version.note or "")
