"""Energy-saving advice: every saving is the difference of two compute_bill bills, with the lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from billing_core.bill_types import (
    BasicChargeMode,
    BillRequest,
    CustomerCategory,
    HouseholdType,
    PurchaseMode,
    TariffAttributes,
    TouUsage,
    Usage,
)
from billing_core.insights.advice import basic_charge_item, power_factor_item, saving_advice, tier_headroom, tou_shift
from billing_core.insights.bills import UsageShape
from billing_core.insights.policy import load_policy
from billing_core.tariffs.compute import compute_bill

HOME = TariffAttributes(category=CustomerCategory.RESIDENTIAL, voltage_level="<1kV")
TOU_HOME = HOME.model_copy(update={"residential_tou": True})
PLANT = TariffAttributes(category=CustomerCategory.CI_TWO_PART, purchase_mode=PurchaseMode.AGENCY,
                         capacity_kva=Decimal(630), basic_charge_mode=BasicChargeMode.CAPACITY,
                         pf_standard=Decimal("0.90"))
PLANT_SHAPE = UsageShape((Decimal("0.10"), Decimal("0.22"), Decimal("0.33"), Decimal("0.35")), Decimal("0.70"),
                         Decimal("200"))
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def _bill(attributes: TariffAttributes, usage: Usage) -> Decimal:
    return compute_bill(BillRequest(attributes=attributes, period_start=OCTOBER[0], period_end=OCTOBER[1],
                                    usage=usage)).total


def test_tier_headroom_counts_kwh_left_and_prices_keeping_to_the_limit() -> None:
    item = tier_headroom(HOME, "2026-10", Decimal("150.5"), Decimal("320"), UsageShape())
    assert item is not None and item.kwh == Decimal("109.5")  # summer tier 2 starts above 260 kWh
    assert item.base_total == _bill(HOME, Usage(total_kwh=Decimal("320")))
    assert item.what_if_total == _bill(HOME, Usage(total_kwh=Decimal("260")))
    assert item.saving == item.base_total - item.what_if_total > 0
    assert "109.5 千瓦时" in item.message and f"{item.saving} 元" in item.message
    assert any(line.code == "tier_2" and line.tariff_version.startswith("gz-residential-tiers") for line in item.lines)
    assert tier_headroom(HOME.model_copy(update={"household_type": HouseholdType.SHARED_METER}), "2026-10",
                         Decimal("10"), Decimal("100"), UsageShape()) is None


def test_moving_peak_to_valley_is_priced_by_the_tou_tariff() -> None:
    shape = UsageShape((Decimal(0), Decimal("0.30"), Decimal("0.35"), Decimal("0.35")))
    item = tou_shift(TOU_HOME, "2026-10", Decimal("300"), shape, Decimal("20"))
    assert item is not None and item.kwh == Decimal("18.000")
    after = _bill(TOU_HOME, Usage(tou=TouUsage(peak=Decimal("72.000"), flat=Decimal("105.000"), valley=Decimal("123.000"))))
    assert item.what_if_total == after and item.saving == item.base_total - after > 0
    assert {line.code for line in item.lines} >= {"tou_peak", "tou_valley"}
    assert tou_shift(HOME, "2026-10", Decimal("300"), UsageShape(), Decimal("20")) is None


def test_power_factor_to_the_standard_and_basic_charge_modes_compared() -> None:
    item = power_factor_item(PLANT, "2026-10", Decimal("150000"), PLANT_SHAPE)
    assert item is not None and item.saving is not None and item.saving > 0
    assert "0.82" in item.title and [line.code for line in item.lines] == ["pf_adjustment", "pf_adjustment"]
    assert item.lines[0].source and item.lines[1].unit_price == 0  # at the standard: no surcharge
    mode = basic_charge_item(PLANT, "2026-10", Decimal("150000"), PLANT_SHAPE, Decimal("200"))
    assert mode is not None and mode.saving is not None
    by_demand = PLANT.model_copy(update={"basic_charge_mode": BasicChargeMode.DEMAND,
                                         "contracted_demand_kw": Decimal(200)})
    usage = Usage(tou=TouUsage(critical_peak=Decimal("15000.000"), peak=Decimal("33000.000"),
                               flat=Decimal("49500.000"), valley=Decimal("52500.000")),
                  reactive_kvarh=Decimal("105000.000"), max_demand_kw=Decimal("200"))
    assert mode.saving == _bill(PLANT, usage) - _bill(by_demand, usage)
    assert mode.saving > 0 and "按需量" in mode.message  # 630 kVA × 22.6 against 200 kW × 36.1
    assert {line.code for line in mode.lines} == {"basic_capacity", "basic_demand"}


def test_saving_advice_lists_what_applies() -> None:
    policy = load_policy().advice
    codes = [i.code for i in saving_advice(PLANT, "2026-10", Decimal("150000"), None, PLANT_SHAPE, policy,
                                           Decimal("200"))]
    assert codes == ["tou_shift_10", "tou_shift_20", "power_factor", "basic_charge_mode"]
    assert [i.code for i in saving_advice(HOME, "2026-10", Decimal("200"), Decimal("80"), UsageShape(), policy)] == [
        "tier_headroom"]
