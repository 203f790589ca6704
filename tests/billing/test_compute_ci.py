"""Commercial and industrial bills, line by line as in reference §6."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from billing_core.bill_types import BillRequest
from billing_core.tariffs.compute import compute_bill
from billing_core.errors import InvalidRequestError, TariffPeriodError, UnknownTariffError
from billing_core.money import to_fen
from billing_core.tariffs.library import TARIFF_DIR, get_library, load_library
from tests.billing.tariff_helpers import amount, lines, one, two_part

D = Decimal
NOV = (date(2025, 11, 1), date(2025, 11, 30))
JUL = (date(2026, 7, 1), date(2026, 7, 31))
COMPONENTS = ("energy", "transmission", "line_loss", "system_operation")


def _row(month: str, kind: str = "two_part", voltage: str = "1-10kV"):
    version = get_library().versions("gd-agency-purchase")
    data = next(v for v in version if v.version == month).data
    return data.prices[kind][voltage]


def _tou_price(flat: Decimal, ratio: str) -> Decimal:
    return (flat * D(ratio)).quantize(D("0.0001"), rounding=ROUND_HALF_UP)


def test_lines_follow_reference_section_6() -> None:
    bill = compute_bill(two_part({"peak": 3000, "flat": 5000, "valley": 2000}, *NOV, kvarh="4000"))
    codes = [l.code for l in bill.lines]
    per_period = [f"{c}_{p}" for p in ("peak", "flat", "valley") for c in COMPONENTS]
    assert codes == [*per_period, "market_allocation", "basic_demand", "pf_adjustment", "government_funds"]
    row = _row("2025-11")
    for period, ratio in (("peak", "1.7"), ("flat", "1"), ("valley", "0.38")):
        for component in COMPONENTS:
            line = one(bill, f"{component}_{period}")
            assert line.unit_price == _tou_price(getattr(row, component), ratio), line.code
            assert line.amount == to_fen(line.quantity * line.unit_price)
            assert line.tariff_version == "gd-agency-purchase@2025-11"
            assert "粤发改价格〔2021〕331号" in line.source
    assert one(bill, "market_allocation").quantity == D("10000")
    assert one(bill, "market_allocation").unit_price == row.market_allocation
    assert bill.total == sum((l.amount for l in bill.lines), D("0"))


def test_critical_peak_in_july_is_peak_times_1_25() -> None:
    bill = compute_bill(two_part({"critical_peak": 1000, "peak": 2000, "flat": 3000, "valley": 1000}, *JUL))
    row = _row("2026-07")
    for component in COMPONENTS:
        critical = one(bill, f"{component}_critical_peak")
        assert critical.quantity == D("1000")
        assert critical.unit_price == _tou_price(getattr(row, component), "2.125")  # 1.7 × 1.25
    assert one(bill, "energy_peak").quantity == D("2000")


def test_critical_peak_outside_its_months_is_billed_as_peak() -> None:
    bill = compute_bill(two_part({"critical_peak": 1000, "peak": 2000, "flat": 3000}, *NOV))
    assert not [l for l in bill.lines if l.code.endswith("_critical_peak")]
    assert one(bill, "energy_peak").quantity == D("3000")
    assert any("尖峰调整电量" in n for n in bill.notes)


def _june_daily(critical_on: dict[date, int]) -> list[dict]:
    start = date(2026, 6, 1)
    return [
        {"day": start + timedelta(days=i),
         "tou": {"critical_peak": str(critical_on.get(start + timedelta(days=i), 10)), "peak": "100",
                 "flat": "200", "valley": "50"}}
        for i in range(30)
    ]


def test_critical_peak_on_a_listed_hot_day_needs_daily_usage() -> None:
    hot_day = date(2026, 6, 11)  # listed in gd-hot-days
    listed = get_library().in_force("gd-hot-days", hot_day).data.dates
    june_hot = sorted(d for d in listed if d.year == 2026 and d.month == 6)
    assert hot_day in june_hot
    daily = _june_daily({hot_day: 40})
    bill = compute_bill(two_part({}, date(2026, 6, 1), date(2026, 6, 30), daily=daily))
    # 40 kWh on 06-11 plus 10 kWh on each other listed June hot day
    assert one(bill, "energy_critical_peak").quantity == D(40 + 10 * (len(june_hot) - 1))
    # every other day's critical-peak kWh (10 each) is billed as peak
    assert one(bill, "energy_peak").quantity == D(3000 + 10 * (30 - len(june_hot)))
    assert any("2026-06-11" in n for n in bill.notes)
    # without daily usage the hot day cannot be told apart: everything as peak, and the bill says so
    total = two_part({"critical_peak": 330, "peak": 3000, "flat": 6000, "valley": 1500}, date(2026, 6, 1), date(2026, 6, 30))
    plain = compute_bill(total)
    assert not lines(plain, "energy_critical_peak")
    assert any("高温日" in n for n in plain.notes)


@pytest.mark.parametrize(
    ("max_demand", "expected"),
    [
        ("400", [("basic_demand", "500", "36.1")]),  # below contract: the contract is billed
        ("525", [("basic_demand", "500", "36.1")]),  # exactly 105 %: nothing doubled
        ("526", [("basic_demand", "525.00", "36.1"), ("basic_demand_excess", "1.00", "72.2")]),
        ("600", [("basic_demand", "525.00", "36.1"), ("basic_demand_excess", "75.00", "72.2")]),
    ],
)
def test_demand_above_105_percent_of_contract_is_billed_double(max_demand, expected) -> None:
    bill = compute_bill(two_part({"flat": 1000}, *NOV, contract_kw="500", max_demand_kw=max_demand, pf_standard=None))
    basic = [(l.code, l.quantity, l.unit_price) for l in bill.lines if l.code.startswith("basic_")]
    assert basic == [(c, D(q), D(p)) for c, q, p in expected]
    assert amount(bill, "basic_demand") + amount(bill, "basic_demand_excess") == sum(
        (to_fen(D(q) * D(p)) for _, q, p in expected), D("0")
    )


def test_capacity_charge() -> None:
    bill = compute_bill(two_part({"flat": 1000}, *NOV, mode="capacity", capacity_kva="1250", pf_standard=None))
    line = one(bill, "basic_capacity")
    assert (line.quantity, line.unit_price, line.amount) == (D("1250"), D("22.6"), D("28250.00"))


def test_single_part_has_no_basic_charge_and_uses_its_own_prices() -> None:
    request = BillRequest.model_validate(
        {"attributes": {"category": "ci_single", "purchase_mode": "agency", "voltage_level": "<1kV"},
         "period_start": NOV[0], "period_end": NOV[1], "usage": {"total_kwh": "2000"}}
    )
    bill = compute_bill(request)
    assert not [l for l in bill.lines if l.code.startswith("basic_")]
    assert one(bill, "transmission_flat").unit_price == _row("2025-11", "single", "<1kV").transmission
    assert any("平段" in n for n in bill.notes)  # no registers given: all flat, and the bill says so


def test_market_price_and_agency_multiplier_change_only_energy() -> None:
    base = compute_bill(two_part({"flat": 1000}, *NOV, pf_standard=None))
    doubled = compute_bill(two_part({"flat": 1000}, *NOV, pf_standard=None, agency_price_multiplier="1.5"))
    row = _row("2025-11")
    assert one(doubled, "energy_flat").unit_price == (row.energy * D("1.5")).quantize(D("0.0001"), ROUND_HALF_UP)
    assert one(doubled, "transmission_flat").amount == one(base, "transmission_flat").amount
    market = two_part({"flat": 1000}, *NOV, pf_standard=None, purchase_mode="market")
    with pytest.raises(InvalidRequestError) as caught:
        compute_bill(market)
    assert caught.value.field == "prices.energy_price"
    priced = BillRequest.model_validate({**market.model_dump(), "prices": {"energy_price": "0.3800"}})
    assert one(compute_bill(priced), "energy_flat").unit_price == D("0.3800")


def test_month_change_splits_and_prorates_basic_charge() -> None:
    start, end = date(2025, 10, 15), date(2025, 11, 14)
    bill = compute_bill(two_part({"peak": 3100, "flat": 6200}, start, end, mode="capacity", capacity_kva="1000"))
    assert {l.tariff_version for l in bill.lines if l.code == "energy_flat"} == {
        "gd-agency-purchase@2025-10", "gd-agency-purchase@2025-11",
    }
    assert sum((l.quantity for l in lines(bill, "energy_flat")), D("0")) == D("6200")
    october = [l for l in lines(bill, "energy_flat") if l.period_start == start][0]
    assert october.quantity == (D(6200) * 17 / 31).quantize(D("0.001"))
    capacity = lines(bill, "basic_capacity")
    assert len(capacity) == 2 and sum((l.quantity for l in capacity), D("0")) == D("1000")
    assert any("分2段" in n for n in bill.notes)


def test_tou_version_change_uses_both_ratio_sets(tmp_path: Path) -> None:
    """Agency tables for 2021 are not in the data; copy two months to see the 2021-10-01 change."""
    directory = tmp_path / "tariffs"
    shutil.copytree(TARIFF_DIR, directory)
    for month, last in (("09", "30"), ("10", "31")):
        source = directory / "agency_purchase" / f"gd-agency-purchase@2025-{month}.yaml"
        text = source.read_text(encoding="utf-8").replace("2025-", "2021-")
        (directory / "agency_purchase" / f"gd-agency-purchase@2021-{month}.yaml").write_text(text, encoding="utf-8")
    library = load_library(directory)
    request = two_part({"peak": 3000, "flat": 3000, "valley": 3000}, date(2021, 9, 16), date(2021, 10, 15), pf_standard=None)
    bill = compute_bill(request, library)
    peaks = lines(bill, "transmission_peak")
    flat = _row("2025-10").transmission
    assert [l.unit_price for l in peaks] == [_tou_price(flat, "1.65"), _tou_price(flat, "1.7")]
    assert "gd-ci-tou@2017-07-01" in bill.tariff_versions and "gd-ci-tou@2021-10-01" in bill.tariff_versions


def test_funds_are_on_all_kwh_including_back_charge_and_outside_pf_base() -> None:
    request = two_part({"flat": 10000}, *NOV, kvarh="10000")
    bill = compute_bill(BillRequest.model_validate({**request.model_dump(), "back_charge_kwh": "500"}))
    back = one(bill, "back_charge")
    assert back.quantity == D("500")
    funds = one(bill, "government_funds")
    assert funds.quantity == D("10500") and funds.amount == to_fen(D("10500") * D("0.02766875"))
    pf_line = one(bill, "pf_adjustment")
    assert pf_line.quantity == sum((l.amount for l in bill.lines if l.code not in ("pf_adjustment", "government_funds")), D("0"))


@pytest.mark.parametrize(
    ("change", "field", "error"),
    [
        ({"voltage_level": "<1kV"}, "attributes.voltage_level", UnknownTariffError),
        ({"region": "shenzhen"}, "attributes.region", UnknownTariffError),
        ({"basic_charge_mode": None}, "attributes.basic_charge_mode", InvalidRequestError),
        ({"category": "agricultural"}, "attributes.pf_standard", InvalidRequestError),  # 0.90 is not the farm standard
    ],
)
def test_bad_attributes_name_the_field(change, field, error) -> None:
    request = two_part({"flat": 100}, *NOV)
    payload = request.model_dump()
    payload["attributes"].update(change)
    with pytest.raises(error) as caught:
        compute_bill(BillRequest.model_validate(payload))
    assert caught.value.field == field


def test_period_outside_the_agency_tables() -> None:
    with pytest.raises(TariffPeriodError) as caught:
        compute_bill(two_part({"flat": 100}, date(2026, 12, 20), date(2027, 1, 19)))
    assert caught.value.field == "period_end"


def test_bill_says_which_figures_are_unconfirmed() -> None:
    bill = compute_bill(two_part({"flat": 100}, *NOV))
    assert any("未经官方文件完全确认" in n and "gd-agency-purchase@2025-11" in n for n in bill.notes)


@settings(max_examples=60, deadline=None)
@given(
    tou=st.fixed_dictionaries({p: st.integers(0, 500_000) for p in ("critical_peak", "peak", "flat", "valley")}),
    extra=st.integers(1, 100_000),
    month=st.integers(1, 12),
    kvarh=st.integers(0, 400_000),
)
def test_total_is_sum_of_lines_and_grows_with_kwh(tou, extra, month, kvarh) -> None:
    start = date(2026, month, 1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    bill = compute_bill(two_part(tou, start, end, kvarh=str(kvarh)))
    assert bill.total == sum((l.amount for l in bill.lines), D("0"))
    assert all(l.amount == to_fen(l.quantity * l.unit_price) for l in bill.lines)
    no_pf = compute_bill(two_part(tou, start, end, pf_standard=None))
    more = compute_bill(two_part({**tou, "flat": tou["flat"] + extra}, start, end, pf_standard=None))
    assert more.total > no_pf.total


def test_daily_totals_split_exactly_and_registers_follow_the_period_shares() -> None:
    start = date(2025, 10, 20)
    days = [start + timedelta(days=i) for i in range(31)]
    request = BillRequest.model_validate(
        {"attributes": {"category": "ci_single", "purchase_mode": "agency"}, "period_start": start,
         "period_end": days[-1],
         "usage": {"tou": {"peak": "215", "flat": "430", "valley": "215"},
                   "daily": [{"day": d, "kwh": "40" if d.month == 10 else "20"} for d in days]}}
    )
    bill = compute_bill(request)
    october = {l.code: l.quantity for l in bill.lines if l.period_start == start}
    assert october["market_allocation"] == D("480")  # 12 days × 40 kWh, exactly
    assert october["energy_peak"] == D("120")  # a quarter of the period's registers are peak
    assert bill.total_kwh == D("860")


amounts = st.decimals(min_value=0, max_value=10**6, places=3).map(str)


def _one_energy_source(usage: dict) -> dict:
    """Random totals and registers would almost never agree; keep the registers when both are drawn."""
    if "tou" in usage:
        usage.pop("total_kwh", None)
    return usage

any_request = st.fixed_dictionaries(
    {
        "attributes": st.fixed_dictionaries(
            {
                "category": st.sampled_from(["residential"] * 3 + ["ci_single", "ci_two_part"] * 2 + ["agricultural"]),
                "region": st.sampled_from(["guangzhou"] * 8 + ["foshan", "shenzhen"]),
                "household_type": st.sampled_from(["ordinary", "many_person", "shared_meter"]),
                "residential_tou": st.booleans(),
                "voltage_level": st.sampled_from(["<1kV", "1-10kV", "35kV", "110kV", "220kV+", "500kV"]),
                "purchase_mode": st.sampled_from(["catalog", "agency", "agency", "market"]),
                "basic_charge_mode": st.sampled_from([None, "capacity", "capacity", "demand", "demand"]),
                "capacity_kva": st.one_of(st.none(), amounts, amounts),
                "contracted_demand_kw": st.one_of(st.none(), amounts, amounts),
                "pf_standard": st.sampled_from([None, "0.90", "0.85", "0.80", "0.75"]),
            }
        ),
        "start": st.one_of(
            st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 11, 15)),
            st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 11, 15)),
            st.dates(min_value=date(2016, 6, 1), max_value=date(2027, 2, 1)),
        ),
        "days": st.integers(1, 95),
        "usage": st.fixed_dictionaries(
            {"reactive_kvarh": st.one_of(st.none(), amounts, amounts), "max_demand_kw": st.one_of(st.none(), amounts)},
            optional={
                "total_kwh": amounts,
                "tou": st.fixed_dictionaries({p: amounts for p in ("critical_peak", "peak", "flat", "valley")}),
            },
        ).map(_one_energy_source),
        "prices": st.one_of(st.none(), st.none(), st.fixed_dictionaries({"energy_price": amounts})),
        "back_charge_kwh": st.decimals(min_value=-1000, max_value=1000, places=2).map(str),
    }
)


@settings(max_examples=300, deadline=None)
@given(any_request)
def test_any_request_gives_a_bill_or_a_billing_error_naming_a_field(raw) -> None:
    from pydantic import ValidationError

    from billing_core.errors import BillingError

    usage = raw["usage"]
    if "total_kwh" not in usage and "tou" not in usage:
        usage["total_kwh"] = "100"
    payload = {
        "attributes": raw["attributes"], "period_start": raw["start"],
        "period_end": raw["start"] + timedelta(days=raw["days"] - 1), "usage": usage,
        "prices": raw["prices"], "back_charge_kwh": raw["back_charge_kwh"],
    }
    try:
        request = BillRequest.model_validate(payload)
    except ValidationError:
        event("refused by the request model")
        return
    try:
        bill = compute_bill(request)
    except BillingError as exc:
        assert exc.field, f"error without a field: {exc}"
        event(f"{type(exc).__name__} on {exc.field}")
        return
    event("bill computed")
    assert bill.total == sum((l.amount for l in bill.lines), D("0"))
    assert bill.lines and all(l.explanation and l.source and l.tariff_version for l in bill.lines)
