"""The engine's checks of per-day usage: the bulk check the cycle takes (every day once, in order)
and the per-day checks that name the wrong day must agree — same bill when the days are good,
the per-day error when any day is not."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from billing_core.bill_types import BillRequest
from billing_core.consumption import (
    Consumption,
    DayConsumption,
    MeterInfo,
    ReadingRegister,
    ReadingValue,
    compute_consumption,
)
from billing_core.errors import InvalidRequestError
from billing_core.tariffs.compute import compute_bill
from billing_core.tariffs.draft import _checked_daily_rows, _daily_rows_in_order

D = Decimal
START, END = date(2025, 10, 15), date(2025, 11, 14)  # crosses the summer/winter tier change: split by day
DAYS = [START + timedelta(days=i) for i in range(31)]
TOU = {"critical_peak": "0", "peak": "3.5", "flat": "4", "valley": "2.25"}


def _request(daily: list[dict[str, Any]], **attributes: Any) -> BillRequest:
    return BillRequest.model_validate({"attributes": {"category": "residential", **attributes},
                                       "period_start": START, "period_end": END, "usage": {"daily": daily}})


def _kwh_days() -> list[dict[str, Any]]:
    return [{"day": d, "kwh": f"{10 + i}.125"} for i, d in enumerate(DAYS)]


def _tou_days(with_kwh: bool = False) -> list[dict[str, Any]]:
    return [{"day": d, "tou": TOU, **({"kwh": "9.75"} if with_kwh else {})} for d in DAYS]


@pytest.mark.parametrize("daily", [_kwh_days(), _tou_days(), _tou_days(with_kwh=True)], ids=["kwh", "tou", "both"])
def test_good_days_take_the_bulk_check_and_give_the_per_day_checks_rows(daily: list[dict[str, Any]]) -> None:
    request = _request(daily, residential_tou=daily[0].get("tou") is not None)
    fast = _daily_rows_in_order(request, len(DAYS))
    assert fast is not None
    assert fast == _checked_daily_rows(request, len(DAYS))


def test_days_out_of_order_are_sorted_and_billed_as_in_order() -> None:
    shuffled = _kwh_days()
    random.Random(7).shuffle(shuffled)
    request = _request(shuffled)
    assert _daily_rows_in_order(request, len(DAYS)) is None  # the per-day checks take it
    in_order = compute_bill(_request(_kwh_days()))
    assert compute_bill(request).model_dump() == in_order.model_dump()
    assert len({line.period_start for line in in_order.lines}) == 2  # the split used the days


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda days: days.__setitem__(5, {**days[5], "day": DAYS[4]}), "usage.daily.5.day", "重复出现"),
    (lambda days: days.__setitem__(0, {**days[0], "day": START - timedelta(days=1)}), "usage.daily.0.day", "不在账期"),
    (lambda days: days.pop(), "usage.daily", "应有 31 天，只有 30 天"),
    (lambda days: days.__setitem__(3, {"day": DAYS[3], "tou": TOU}), "usage.daily", "要么每天都给分时电量"),
    (lambda days: days.__setitem__(2, {"day": DAYS[2]}), "usage.daily.2", "需提供当日"),
])
def test_a_wrong_day_is_named(change: Any, field: str, message: str) -> None:
    daily = _kwh_days()
    change(daily)
    with pytest.raises(InvalidRequestError) as caught:
        compute_bill(_request(daily))
    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_tou_day_whose_kwh_disagrees_is_named() -> None:
    daily = _tou_days(with_kwh=True)
    daily[7] = {**daily[7], "kwh": "9.74"}
    with pytest.raises(InvalidRequestError) as caught:
        compute_bill(_request(daily, residential_tou=True))
    assert caught.value.field == "usage.daily.7.kwh"


def test_the_read_step_tells_to_usage_its_days_are_not_negative() -> None:
    meter = MeterInfo(1, "M1", D("1"), date(2020, 1, 1))
    readings = [ReadingValue(1, START - timedelta(days=1) + timedelta(days=i), ReadingRegister.ACTIVE_TOTAL,
                             D("100") + D(i) * D("2.5")) for i in range(32)]
    consumption = compute_consumption([meter], readings, START, END)
    assert consumption.daily_non_negative is True
    usage = consumption.to_usage()
    assert [d.kwh for d in usage.daily or []] == [D("2.5")] * 31


def test_a_negative_day_without_the_flag_is_still_refused() -> None:
    """Days built by hand (no read step) are looked at one by one, and a negative one is not billed."""
    days = [DayConsumption(d, {ReadingRegister.ACTIVE_TOTAL: D("-1") if i == 3 else D("2")})
            for i, d in enumerate(DAYS)]
    consumption = Consumption(START, END, {ReadingRegister.ACTIVE_TOTAL: D("59")}, None, days, [])
    with pytest.raises(ValidationError):
        consumption.to_usage()
