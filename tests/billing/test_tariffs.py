"""The tariff data files and the policy library: versions by date, sources, validation errors."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from billing_core.errors import TariffDataError, TariffPeriodError, UnknownTariffError
from billing_core.tariffs.library import (
    TARIFF_DIR,
    AgencyPurchase,
    Agricultural,
    CiTou,
    GovernmentFunds,
    HotDays,
    ResidentialTiers,
    ResidentialTou,
    get_library,
    load_library,
)


@pytest.fixture(scope="module")
def library():
    return get_library()


def test_every_file_loads_with_dates_region_and_a_cited_source(library) -> None:
    assert set(library.tariff_ids()) >= {
        "gz-residential-tiers", "gz-residential-tou", "gd-ci-tou", "gd-hot-days",
        "gd-agency-purchase", "gd-power-factor", "gd-government-funds", "gd-agricultural",
    }
    for tariff_id in library.tariff_ids():
        for version in library.versions(tariff_id):
            assert version.source and all(s.strip() for s in version.source), version.key
            assert version.region
            if not version.confirmed:
                assert version.note or version.unconfirmed, f"{version.key}: unconfirmed without a note"


def test_library_is_loaded_once() -> None:
    assert get_library() is get_library()


def test_many_person_allowance_starts_2021_06_01(library) -> None:
    before = library.in_force("gz-residential-tiers", date(2021, 5, 31)).data
    after = library.in_force("gz-residential-tiers", date(2021, 6, 1)).data
    assert isinstance(before, ResidentialTiers) and isinstance(after, ResidentialTiers)
    assert before.limits["many_person"] == before.limits["ordinary"]
    for season in ("summer", "non_summer"):
        low, high = before.limits["ordinary"][season]
        assert after.limits["many_person"][season] == (low + 100, high + 100)
    assert after.limits["ordinary"] == {"summer": (260, 600), "non_summer": (200, 400)}
    assert "粤发改价格函〔2021〕826号" in library.in_force("gz-residential-tiers", date(2025, 1, 1)).source


def test_residential_prices_match_the_reference(library) -> None:
    tiers = library.in_force("gz-residential-tiers", date(2026, 1, 1)).data
    assert tiers.prices == {
        "tier_1": Decimal("0.58886875"), "tier_2": Decimal("0.63886875"),
        "tier_3": Decimal("0.88886875"), "shared_meter": Decimal("0.62586875"),
    }
    assert tiers.prices["tier_2"] - tiers.prices["tier_1"] == Decimal("0.05")
    assert tiers.prices["tier_3"] - tiers.prices["tier_1"] == Decimal("0.30")
    assert tiers.summer_months == frozenset({5, 6, 7, 8, 9, 10})


def test_residential_tou_prices_follow_the_ratios_on_the_fund_excluded_base(library) -> None:
    tou = library.in_force("gz-residential-tou", date(2025, 7, 1)).data
    assert isinstance(tou, ResidentialTou)
    base = tou.tier_1_prices["flat"] - tou.funds_included
    for period in ("peak", "flat", "valley"):
        assert tou.tier_1_prices[period] == base * tou.ratios[period] + tou.funds_included


def test_ci_tou_has_both_ratio_versions(library) -> None:
    old = library.in_force("gd-ci-tou", date(2021, 9, 30)).data
    new = library.in_force("gd-ci-tou", date(2021, 10, 1)).data
    assert isinstance(old, CiTou) and isinstance(new, CiTou)
    assert [old.ratios[p] for p in ("peak", "flat", "valley")] == [Decimal("1.65"), 1, Decimal("0.5")]
    assert [new.ratios[p] for p in ("peak", "flat", "valley")] == [Decimal("1.7"), 1, Decimal("0.38")]
    assert old.critical_peak is None
    assert new.critical_peak is not None
    assert new.critical_peak.multiplier_on_peak == Decimal("1.25")
    assert new.critical_peak.months == frozenset({7, 8, 9})
    assert new.critical_peak.hours == [(11, 12), (15, 17)]
    assert new.periods["peak"] == [(10, 12), (14, 19)] and new.periods["valley"] == [(0, 8)]
    hot = library.in_force(new.critical_peak.hot_days_tariff, date(2026, 6, 1))
    assert isinstance(hot.data, HotDays) and hot.data.days and not hot.confirmed


def test_agency_tables_cover_every_month_of_2025_and_2026(library) -> None:
    day = date(2025, 1, 1)
    while day <= date(2026, 12, 31):
        version = library.in_force("gd-agency-purchase", day)
        assert version.effective_from == day.replace(day=1), day
        data = version.data
        assert isinstance(data, AgencyPurchase)
        assert set(data.prices["two_part"]) >= {"1-10kV", "35kV", "110kV", "220kV+"}
        assert set(data.prices["single"]) >= {"<1kV", "1-10kV"}
        assert data.basic_charges["1-10kV"].capacity == Decimal("22.6")
        assert data.basic_charges["1-10kV"].demand == Decimal("36.1")
        # the per-kWh figures are placeholders: the file must say so, figure by figure; only the
        # 2026-05 two-part 1-10kV row holds a real bill's figures (its market allocation excepted)
        assert not version.confirmed
        for kind, rows in data.prices.items():
            for voltage in rows:
                for figure in ("energy", "transmission", "market_allocation"):
                    path = f"prices.{kind}.{voltage}.{figure}"
                    covered = any(path == f or path.startswith(f + ".") for f, _ in version.figure_caveats)
                    real = version.version == "2026-05" and (kind, voltage) == ("two_part", "1-10kV")
                    assert covered != (real and figure != "market_allocation"), (version.key, path)
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def test_funds(library) -> None:
    funds = library.in_force("gd-government-funds", date(2025, 10, 1)).data
    assert isinstance(funds, GovernmentFunds)
    assert funds.rates["ci"] == Decimal("0.02766875") and funds.rates["residential"] == Decimal("0.00866875")
    assert set(funds.rates) == {"ci", "residential", "agricultural"}
    tiers = library.in_force("gz-residential-tiers", date(2025, 10, 1)).data
    assert tiers.funds_included == funds.rates["residential"]


def test_unknown_tariff_and_period_outside_versions(library) -> None:
    with pytest.raises(UnknownTariffError):
        library.in_force("gz-no-such-tariff", date(2025, 1, 1))
    with pytest.raises(UnknownTariffError):
        library.versions("gz-no-such-tariff")
    with pytest.raises(TariffPeriodError, match="2027-01-01"):
        library.in_force("gd-agency-purchase", date(2027, 1, 1))
    with pytest.raises(TariffPeriodError):
        library.in_force("gz-residential-tiers", date(2017, 6, 30))


def test_versions_are_listed_oldest_first_and_change_dates_found(library) -> None:
    versions = library.versions("gz-residential-tiers")
    assert [v.version for v in versions] == ["2017-07-01", "2021-06-01"]
    assert library.change_dates("gz-residential-tiers", date(2021, 5, 15), date(2021, 6, 14)) == [date(2021, 6, 1)]
    assert library.change_dates("gz-residential-tiers", date(2021, 6, 1), date(2021, 6, 30)) == []


def test_unconfirmed_figures_are_listed(library) -> None:
    fields = {(key.split("@")[0], field) for key, field, _ in library.unconfirmed()}
    assert ("gd-power-factor", "tables.0.85.points.0.94") in fields
    assert ("gd-agency-purchase", "prices") in fields
    assert ("gd-agricultural", "prices.<1kV") in fields
    assert ("gd-government-funds", "rates.agricultural") in fields


def test_agricultural_tariff_is_single_part_with_the_0_80_pf_rule(library) -> None:
    version = library.in_force("gd-agricultural", date(2026, 1, 1))
    data = version.data
    assert isinstance(data, Agricultural)
    assert set(data.prices) == {"<1kV", "1-10kV", "35kV"} and data.time_of_use is False
    assert data.power_factor.standard == Decimal("0.80") and data.power_factor.min_capacity_kva == Decimal("100")
    assert "〔83〕水电财字第215号" in version.source_text
    # every price is a placeholder and the file says so field by field
    assert not version.confirmed
    assert {u.field for u in version.unconfirmed} >= {f"prices.{level}" for level in data.prices}


def test_an_agricultural_file_claiming_tou_is_refused(tmp_path: Path) -> None:
    directory = _copy_tariffs(tmp_path)
    path = directory / "gd-agricultural@2017-07-01.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("time_of_use: false", "time_of_use: true"), encoding="utf-8")
    with pytest.raises(TariffDataError, match=r"gd-agricultural@2017-07-01\.yaml.*time_of_use"):
        load_library(directory)


def _copy_tariffs(tmp_path: Path) -> Path:
    target = tmp_path / "tariffs"
    shutil.copytree(TARIFF_DIR, target)
    return target


def test_a_malformed_file_names_file_and_field(tmp_path: Path) -> None:
    directory = _copy_tariffs(tmp_path)
    path = directory / "gz-residential-tiers@2021-06-01.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('tier_2: "0.63886875"', 'tier_2: "abc"'), encoding="utf-8")
    with pytest.raises(TariffDataError) as caught:
        load_library(directory)
    assert "gz-residential-tiers@2021-06-01.yaml" in str(caught.value)
    assert "prices.tier_2" in str(caught.value)


def test_a_missing_source_is_refused(tmp_path: Path) -> None:
    directory = _copy_tariffs(tmp_path)
    path = directory / "gd-ci-tou@2021-10-01.yaml"
    text = path.read_text(encoding="utf-8").replace("source:\n  - 粤发改价格〔2021〕331号\n", "source: []\n")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TariffDataError, match=r"gd-ci-tou@2021-10-01\.yaml: source"):
        load_library(directory)


def test_overlapping_versions_are_refused(tmp_path: Path) -> None:
    directory = _copy_tariffs(tmp_path)
    path = directory / "gz-residential-tiers@2017-07-01.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("effective_to: 2021-05-31", "effective_to: 2021-06-30"), encoding="utf-8")
    with pytest.raises(TariffDataError, match="overlaps"):
        load_library(directory)


def test_tou_hours_must_cover_the_day(tmp_path: Path) -> None:
    directory = _copy_tariffs(tmp_path)
    path = directory / "gd-ci-tou@2021-10-01.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("valley: [[0, 8]]", "valley: [[0, 7]]"), encoding="utf-8")
    with pytest.raises(TariffDataError, match="periods"):
        load_library(directory)


def test_billing_doc_names_every_tariff_with_unconfirmed_figures(library) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "billing.md").read_text(encoding="utf-8")
    section = doc.split("## Figures no source settles", 1)[1]
    for key, _, _ in library.unconfirmed():
        assert key.split("@")[0] in section, key
