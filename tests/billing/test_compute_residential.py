"""Residential bills: tiers (limits inclusive), many-person and shared-meter households, TOU, splits."""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from billing_core.bill_types import BillRequest, ComputedBill
from billing_core.tariffs.compute import compute_bill
from billing_core.errors import InvalidRequestError, TariffPeriodError, UnknownTariffError
from billing_core.money import to_fen
from tests.billing.tariff_helpers import amount, lines, one, residential

D = Decimal
JULY = (date(2025, 7, 1), date(2025, 7, 31))
JANUARY = (date(2026, 1, 1), date(2026, 1, 31))
T1, T2, T3 = D("0.58886875"), D("0.63886875"), D("0.88886875")


def test_reference_example_400_kwh_in_july() -> None:
    bill = compute_bill(residential(400, *JULY))
    assert [(l.code, l.quantity, l.amount) for l in bill.lines] == [
        ("tier_1", D("260"), D("153.11")),
        ("tier_2", D("140"), D("89.44")),
    ]
    assert bill.total == D("242.55")
    assert bill.lines[0].tariff_version == "gz-residential-tiers@2021-06-01"
    assert "粤发改价格〔2017〕498号" in bill.lines[0].source
    assert all(l.explanation.endswith("。") for l in bill.lines)
    assert "四舍五入" in bill.rounding


@pytest.mark.parametrize(
    ("kwh", "period", "expected"),
    [
        (260, JULY, {"tier_1": 260}),  # the summer tier-1 limit is inclusive
        (261, JULY, {"tier_1": 260, "tier_2": 1}),
        (600, JULY, {"tier_1": 260, "tier_2": 340}),
        (601, JULY, {"tier_1": 260, "tier_2": 340, "tier_3": 1}),
        (200, JANUARY, {"tier_1": 200}),
        (400, JANUARY, {"tier_1": 200, "tier_2": 200}),
        (401, JANUARY, {"tier_1": 200, "tier_2": 200, "tier_3": 1}),
        (0, JULY, {"tier_1": 0}),
    ],
)
def test_tier_limits_are_inclusive(kwh: int, period: tuple[date, date], expected: dict[str, int]) -> None:
    bill = compute_bill(residential(kwh, *period))
    assert {l.code: l.quantity for l in bill.lines} == {k: D(v) for k, v in expected.items()}
    prices = {"tier_1": T1, "tier_2": T2, "tier_3": T3}
    assert bill.total == sum((to_fen(D(q) * prices[c]) for c, q in expected.items()), D("0"))


def test_many_person_household_gets_100_more_kwh_from_2021_06_01() -> None:
    after = compute_bill(residential(360, date(2021, 7, 1), date(2021, 7, 31), household="many_person"))
    assert {l.code: l.quantity for l in after.lines} == {"tier_1": D("360")}
    before = compute_bill(residential(360, date(2020, 7, 1), date(2020, 7, 31), household="many_person"))
    assert {l.code: l.quantity for l in before.lines} == {"tier_1": D("260"), "tier_2": D("100")}
    assert before.lines[0].tariff_version == "gz-residential-tiers@2017-07-01"
    winter = compute_bill(residential(501, *JANUARY, household="many_person"))
    assert {l.code: l.quantity for l in winter.lines} == {"tier_1": D("300"), "tier_2": D("200"), "tier_3": D("1")}


def test_shared_meter_is_flat() -> None:
    bill = compute_bill(residential(1000, *JULY, household="shared_meter"))
    line = one(bill, "shared_meter")
    assert line.unit_price == D("0.62586875") and line.amount == to_fen(1000 * D("0.62586875"))
    assert bill.total == line.amount


def _tou(peak: int, flat: int, valley: int, period=JULY, household="ordinary", critical: int = 0) -> BillRequest:
    return BillRequest.model_validate(
        {
            "attributes": {"category": "residential", "residential_tou": True, "household_type": household},
            "period_start": period[0], "period_end": period[1],
            "usage": {"tou": {"peak": peak, "flat": flat, "valley": valley, "critical_peak": critical}},
        }
    )


def test_residential_tou_bills_tier_1_tou_prices_then_tier_add_ons() -> None:
    bill = compute_bill(_tou(200, 300, 150))  # 650 kWh in July: 340 in tier 2, 50 in tier 3
    assert one(bill, "tou_peak").unit_price == D("0.99500875")
    assert one(bill, "tou_flat").unit_price == D("0.58886875")
    assert one(bill, "tou_valley").unit_price == D("0.22914475")
    assert (one(bill, "tier_2_addon").quantity, one(bill, "tier_2_addon").unit_price) == (D("340"), D("0.05"))
    assert (one(bill, "tier_3_addon").quantity, one(bill, "tier_3_addon").unit_price) == (D("50"), D("0.30"))
    expected = (to_fen(200 * D("0.99500875")) + to_fen(300 * D("0.58886875")) + to_fen(150 * D("0.22914475"))
                + to_fen(340 * D("0.05")) + to_fen(50 * D("0.30")))
    assert bill.total == expected


def test_residential_tou_has_no_critical_peak_and_no_add_on_within_tier_1() -> None:
    bill = compute_bill(_tou(50, 100, 50, critical=10))
    assert one(bill, "tou_peak").quantity == D("60")
    assert not lines(bill, "tier_2_addon") and not lines(bill, "tier_3_addon")
    assert any("尖峰" in n for n in bill.notes)


def test_residential_tou_needs_registers_and_is_not_offered_to_shared_meters() -> None:
    request = BillRequest.model_validate(
        {"attributes": {"category": "residential", "residential_tou": True}, "period_start": JULY[0],
         "period_end": JULY[1], "usage": {"total_kwh": "300"}}
    )
    with pytest.raises(InvalidRequestError) as caught:
        compute_bill(request)
    assert caught.value.field == "usage.tou"
    with pytest.raises(UnknownTariffError) as caught2:
        compute_bill(_tou(1, 1, 1, household="shared_meter"))
    assert caught2.value.field == "attributes.residential_tou"


def test_season_change_splits_the_period_and_prorates_usage_and_limits() -> None:
    start, end = date(2025, 10, 15), date(2025, 11, 14)  # 17 summer days + 14 non-summer days
    bill = compute_bill(residential(400, start, end))
    summer = [l for l in bill.lines if l.period_start == start]
    winter = [l for l in bill.lines if l.period_start == date(2025, 11, 1)]
    assert summer and winter and len(summer) + len(winter) == len(bill.lines)
    assert all(l.period_end == date(2025, 10, 31) for l in summer)
    assert sum((l.quantity for l in bill.lines), D("0")) == D("400")
    assert sum((l.quantity for l in summer), D("0")) == (D(400) * 17 / 31).quantize(D("0.001"))
    # tier-1 limits prorated by days: 260 × 17/31 ≈ 143 and 200 × 14/31 ≈ 90
    assert [l.quantity for l in summer if l.code == "tier_1"] == [D("143")]
    assert [l.quantity for l in winter if l.code == "tier_1"] == [D("90")]
    assert any("分2段" in n and "夏季/非夏季" in n for n in bill.notes)


def test_split_with_daily_usage_is_exact() -> None:
    start, end = date(2025, 10, 15), date(2025, 11, 14)
    days = [start + timedelta(days=i) for i in range(31)]
    daily = [{"day": d, "kwh": "20" if d.month == 10 else "5"} for d in days]
    request = BillRequest.model_validate(
        {"attributes": {"category": "residential"}, "period_start": start, "period_end": end, "usage": {"daily": daily}}
    )
    bill = compute_bill(request)
    october = sum((l.quantity for l in bill.lines if l.period_start == start), D("0"))
    assert october == D("340") and bill.total_kwh == D("410")
    assert any("逐日电量" in n for n in bill.notes)


def test_daily_usage_must_cover_the_period() -> None:
    request = BillRequest.model_validate(
        {"attributes": {"category": "residential"}, "period_start": JULY[0], "period_end": JULY[1],
         "usage": {"daily": [{"day": JULY[0], "kwh": "3"}]}}
    )
    with pytest.raises(InvalidRequestError) as caught:
        compute_bill(request)
    assert caught.value.field == "usage.daily"


def test_version_change_splits_the_period() -> None:
    bill = compute_bill(residential(700, date(2021, 5, 16), date(2021, 6, 15), household="many_person"))
    versions = {l.tariff_version for l in bill.lines}
    assert versions == {"gz-residential-tiers@2017-07-01", "gz-residential-tiers@2021-06-01"}
    assert bill.tariff_versions == ["gz-residential-tiers@2017-07-01", "gz-residential-tiers@2021-06-01"]
    assert any("2021-06-01" in n and "版本" in n for n in bill.notes)


def test_back_charge_is_its_own_line() -> None:
    bill = compute_bill(residential(400, *JULY, back_charge_kwh="50"))
    back = one(bill, "back_charge")
    assert back.quantity == D("50")
    assert back.unit_price == (D("242.55") / 400).quantize(D("0.00000001"))
    assert bill.total == D("242.55") + back.amount
    refund = one(compute_bill(residential(400, *JULY, back_charge_kwh="-50")), "back_charge")
    assert refund.amount == -back.amount


def test_period_outside_every_version_and_unknown_region() -> None:
    with pytest.raises(TariffPeriodError) as caught:
        compute_bill(residential(100, date(2016, 1, 1), date(2016, 1, 31)))
    assert caught.value.field == "period_start"
    request = BillRequest.model_validate(
        {"attributes": {"category": "residential", "region": "shenzhen"}, "period_start": JULY[0],
         "period_end": JULY[1], "usage": {"total_kwh": "1"}}
    )
    with pytest.raises(UnknownTariffError) as caught2:
        compute_bill(request)
    assert caught2.value.field == "attributes.region"


def test_negative_usage_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="usage.total_kwh"):
        residential(-5, *JULY)


def test_result_is_a_valid_bill_that_serialises_cleanly() -> None:
    bill = compute_bill(residential(777, date(2025, 10, 20), date(2025, 11, 19)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = bill.model_dump_json()
    again = ComputedBill.model_validate_json(text)
    assert again.total == bill.total and len(again.lines) == len(bill.lines)


months = st.sampled_from([(date(2025, m, 1), date(2025, m, 28)) for m in range(1, 13)])


@settings(max_examples=80, deadline=None)
@given(
    kwh=st.decimals(min_value=0, max_value=5000, places=2),
    extra=st.decimals(min_value=D("0.01"), max_value=500, places=2),
    period=months,
    household=st.sampled_from(["ordinary", "many_person", "shared_meter"]),
)
def test_total_is_sum_of_lines_and_bill_grows_with_kwh(kwh, extra, period, household) -> None:
    bill = compute_bill(residential(kwh, *period, household=household))
    assert bill.total == sum((l.amount for l in bill.lines), D("0"))
    assert all(l.amount == to_fen(l.quantity * l.unit_price) for l in bill.lines)
    assert sum((l.quantity for l in bill.lines), D("0")) == kwh
    bigger = compute_bill(residential(kwh + extra, *period, household=household))
    assert bigger.total >= bill.total


@settings(max_examples=40, deadline=None)
@given(
    start=st.dates(min_value=date(2021, 1, 1), max_value=date(2026, 11, 1)),
    days=st.integers(min_value=28, max_value=33),
    kwh=st.decimals(min_value=0, max_value=3000, places=3),
)
def test_any_split_keeps_every_kwh(start: date, days: int, kwh: Decimal) -> None:
    bill = compute_bill(residential(kwh, start, start + timedelta(days=days - 1)))
    assert sum((l.quantity for l in bill.lines), D("0")) == kwh
    assert amount(bill, "tier_1") >= 0


def test_a_three_month_period_gets_three_months_of_tier_limits() -> None:
    bill = compute_bill(residential(1300, date(2026, 1, 1), date(2026, 3, 31)))
    assert {l.code: l.quantity for l in bill.lines} == {"tier_1": D("600"), "tier_2": D("600"), "tier_3": D("100")}
    assert any("按3个月" in n for n in bill.notes)
