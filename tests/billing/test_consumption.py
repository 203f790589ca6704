"""Readings → consumption: multiplier, meter replacement, readings going backwards, missing days."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from billing_core.bill_types import CustomerCategory
from billing_core.consumption import (
    AnomalyKind,
    MeterInfo,
    ReadingValue,
    compute_consumption,
    load_consumption,
)
from billing_core.errors import ReadingAnomalyError
from billing_core.db.models import Customer, Meter, Reading, ReadingRegister, ReadingSource

A = ReadingRegister.ACTIVE_TOTAL
OCT_1, OCT_31 = date(2026, 10, 1), date(2026, 10, 31)


def _day(n: int) -> date:
    """Day n of October 2026 (0 = 30 September, the reading that opens the period)."""
    return date(2026, 9, 30) + timedelta(days=n)


def _series(meter_id: int, start_value: str, daily_step: str, days: range, register=A) -> list[ReadingValue]:
    value, step = Decimal(start_value), Decimal(daily_step)
    return [ReadingValue(meter_id, _day(n), register, value + step * (n - days.start)) for n in days]


METER = MeterInfo(1, "M-0001", Decimal("1000"), date(2024, 1, 1))


def test_multiplier_example_from_the_reference() -> None:
    readings = [ReadingValue(1, _day(0), A, Decimal("165.44")), ReadingValue(1, OCT_31, A, Decimal("167.70"))]
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    assert result.active_kwh == Decimal("2260")  # (167.70 − 165.44) × 1000
    assert not result.needs_review
    # Only two readings: the 30 days between them are flagged, the total is still right.
    assert result.missing_days == [_day(n) for n in range(1, 31)]
    assert [a.kind for a in result.anomalies] == [AnomalyKind.MISSING_DAYS]
    usage = result.to_usage()
    assert usage.total_kwh == Decimal("2260") and usage.daily is None


def test_complete_daily_readings_give_exact_days() -> None:
    readings = _series(1, "165.44", "0.07", range(0, 32))
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    assert result.missing_days == [] and result.anomalies == []
    assert len(result.daily) == 31
    assert all(d.registers[A] == Decimal("70") for d in result.daily)  # 0.07 × 1000
    assert result.active_kwh == Decimal("2170") == sum(d.registers[A] for d in result.daily)
    usage = result.to_usage()
    assert usage.daily is not None and [d.day for d in usage.daily][:2] == [OCT_1, _day(2)]


def test_readings_outside_the_period_do_not_count() -> None:
    readings = _series(1, "100", "1", range(-10, 45))  # from 20 September to 14 November
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    assert result.active_kwh == Decimal("31000")


def test_meter_replacement_counts_old_final_and_new_from_first_reading() -> None:
    old = MeterInfo(1, "M-OLD", Decimal("1"), date(2020, 1, 1), removed_on=_day(15), final_reading=Decimal("5015"))
    new = MeterInfo(2, "M-NEW", Decimal("2"), _day(15), replaced_meter_id=1)
    readings = _series(1, "5000", "1", range(0, 15))  # old meter read daily to 14 October
    readings += _series(2, "0.5", "3", range(15, 32))  # new meter: 0.5 at installation, +3 a day
    result = compute_consumption([new, old], readings, OCT_1, OCT_31)
    # old: final 5015 − opening 5000 = 15 kWh; new: (48.5 − 0.5) × 2 = 96 kWh. No reading went backwards.
    assert result.active_kwh == Decimal("15") + Decimal("96")
    assert result.anomalies == [] and result.missing_days == []
    assert sum(d.registers[A] for d in result.daily) == result.active_kwh
    assert result.daily[14].registers[A] == Decimal("1")  # 15 October: the old meter's last day
    assert result.daily[15].registers[A] == Decimal("6")  # 16 October: new meter, 3 × 2


def test_the_same_drop_without_a_replacement_record_is_an_anomaly() -> None:
    readings = _series(1, "5000", "1", range(0, 15)) + _series(1, "0.5", "3", range(15, 32))
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    assert result.needs_review
    [anomaly] = [a for a in result.anomalies if a.kind is AnomalyKind.READING_DECREASED]
    assert (anomaly.asset_no, anomaly.register, anomaly.day) == ("M-0001", A, _day(15))
    assert (anomaly.previous, anomaly.current) == (Decimal("5014"), Decimal("0.5"))
    assert "M-0001" in anomaly.message and "2026-10-15" in anomaly.message
    assert A not in result.registers  # no consumption at all rather than a negative one
    assert result.daily == []
    with pytest.raises(ReadingAnomalyError, match="readings: .*M-0001"):
        result.to_usage()


def test_a_small_backwards_reading_is_flagged_not_netted() -> None:
    readings = _series(1, "100", "1", range(0, 32))
    readings[10] = ReadingValue(1, _day(10), A, Decimal("108.5"))  # one day reads lower than the day before
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    kinds = [a.kind for a in result.anomalies]
    assert kinds == [AnomalyKind.READING_DECREASED]
    assert all(v >= 0 for v in result.registers.values())


def test_missing_days_are_flagged_and_the_total_still_comes_from_the_readings() -> None:
    readings = [r for r in _series(1, "100", "0.01", range(0, 32)) if r.read_date not in (_day(10), _day(11))]
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    assert result.missing_days == [_day(10), _day(11)]
    assert result.active_kwh == Decimal("310")  # 31 days × 0.01 × 1000
    assert result.daily == []  # 10–12 October cannot be split day by day
    assert not result.needs_review
    [anomaly] = result.anomalies
    assert anomaly.kind is AnomalyKind.MISSING_DAYS and anomaly.days == (_day(10), _day(11))
    assert result.to_usage().total_kwh == Decimal("310")


def test_readings_stopping_early_flag_the_rest_of_the_period() -> None:
    readings = _series(1, "100", "1", range(0, 29))  # nothing after 28 October
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    assert result.missing_days == [_day(29), _day(30), _day(31)]
    assert result.active_kwh == Decimal("28000")


def test_no_readings_block_billing() -> None:
    result = compute_consumption([METER], [], OCT_1, OCT_31)
    assert result.needs_review
    assert AnomalyKind.NO_READINGS in [a.kind for a in result.anomalies]
    with pytest.raises(ReadingAnomalyError):
        result.to_usage()


def test_tou_reactive_and_demand_registers_make_a_two_part_usage() -> None:
    ct_meter = MeterInfo(1, "CT-1", Decimal("80"), date(2024, 1, 1))
    steps = {ReadingRegister.CRITICAL_PEAK: "0.5", ReadingRegister.PEAK: "2", ReadingRegister.FLAT: "3",
             ReadingRegister.VALLEY: "4.5", ReadingRegister.ACTIVE_TOTAL: "10",
             ReadingRegister.REACTIVE_TOTAL: "4"}
    readings = [r for reg, step in steps.items() for r in _series(1, "1000", step, range(0, 32), reg)]
    readings += [ReadingValue(1, _day(n), ReadingRegister.MAX_DEMAND, Decimal(3 + n % 7)) for n in range(1, 32)]
    readings.append(ReadingValue(1, date(2026, 11, 2), ReadingRegister.MAX_DEMAND, Decimal("99")))  # next month
    usage = compute_consumption([ct_meter], readings, OCT_1, OCT_31).to_usage()
    assert usage.tou is not None
    assert usage.tou.peak == Decimal("4960") and usage.tou.valley == Decimal("11160")  # 2 × 31 × 80, 4.5 × 31 × 80
    assert usage.tou.total() == usage.total_kwh == Decimal("24800")
    assert usage.reactive_kvarh == Decimal("9920")
    assert usage.max_demand_kw == Decimal("9") * 80
    assert usage.daily is not None and usage.daily[0].tou is not None
    assert usage.daily[0].tou.critical_peak == Decimal("40")


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.decimals(min_value=0, max_value=500, places=2), min_size=31, max_size=31),
    multiplier=st.sampled_from([Decimal("1"), Decimal("40"), Decimal("1000")]),
    opening=st.decimals(min_value=0, max_value=99999, places=2),
)
def test_daily_kwh_always_add_up_to_the_period_total(steps, multiplier, opening) -> None:
    meter = MeterInfo(1, "M", multiplier, date(2024, 1, 1))
    values = [opening]
    for step in steps:
        values.append(values[-1] + step)
    readings = [ReadingValue(1, _day(n), A, v) for n, v in enumerate(values)]
    result = compute_consumption([meter], readings, OCT_1, OCT_31)
    assert result.active_kwh == (values[-1] - values[0]) * multiplier
    assert sum(d.registers[A] for d in result.daily) == result.active_kwh
    assert all(d.registers[A] >= 0 for d in result.daily)


def test_consumption_from_the_database(session: Session) -> None:
    customer = Customer(account_no="020100000009", name="李秀英", address="广州市越秀区北京路 8 号",
                        category=CustomerCategory.RESIDENTIAL)
    old = Meter(asset_no="OLD-1", customer=customer, multiplier=Decimal("1"), installed_on=date(2020, 1, 1),
                removed_on=_day(20), final_reading=Decimal("1220.5"))
    session.add(old)
    session.flush()
    new = Meter(asset_no="NEW-1", customer=customer, multiplier=Decimal("1"), installed_on=_day(20),
                replaced_meter_id=old.id)
    session.add(new)
    session.flush()
    for n in range(0, 20):
        session.add(Reading(meter_id=old.id, read_date=_day(n), register=A, value=Decimal(1000 + 11 * n)))
    for n in range(20, 32):
        session.add(Reading(meter_id=new.id, read_date=_day(n), register=A, value=Decimal(2 * (n - 20)),
                            source=ReadingSource.MANUAL if n == 20 else ReadingSource.DAILY))
    session.commit()
    result = load_consumption(session, customer.id, OCT_1, OCT_31)
    # old: final 1220.5 − 1000 (the 20th's reading is missing but the final reading covers it); new: 22 − 0
    assert result.active_kwh == Decimal("220.5") + Decimal("22")
    assert result.missing_days == [] and not result.needs_review


def test_a_total_register_far_from_the_tou_sum_is_held_for_review() -> None:
    steps = {ReadingRegister.PEAK: "2", ReadingRegister.FLAT: "3", ReadingRegister.VALLEY: "5",
             ReadingRegister.ACTIVE_TOTAL: "12"}  # 12 a day against 10 in the TOU registers
    readings = [r for reg, step in steps.items() for r in _series(1, "100", step, range(0, 32), reg)]
    result = compute_consumption([METER], readings, OCT_1, OCT_31)
    assert [a.kind for a in result.anomalies] == [AnomalyKind.REGISTERS_DISAGREE]
    with pytest.raises(ReadingAnomalyError, match="尖峰平谷"):
        result.to_usage()


def test_residential_tou_meter_without_critical_peak_register() -> None:
    steps = {ReadingRegister.PEAK: "2", ReadingRegister.FLAT: "3", ReadingRegister.VALLEY: "5",
             ReadingRegister.ACTIVE_TOTAL: "10"}
    readings = [r for reg, step in steps.items() for r in _series(1, "100", step, range(0, 32), reg)]
    meter = MeterInfo(1, "R-1", Decimal("1"), date(2024, 1, 1))
    usage = compute_consumption([meter], readings, OCT_1, OCT_31).to_usage()
    assert usage.tou is not None and usage.tou.critical_peak == 0 and usage.tou.valley == Decimal("155")
    assert usage.total_kwh == Decimal("310")
    assert usage.daily is not None and usage.daily[3].kwh is None and usage.daily[3].tou.flat == Decimal("3")


def test_many_customers_are_loaded_in_chunks(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cycle loads 100,000 customers at once; SQLite caps bound parameters, so ids go in chunks."""
    import billing_core.consumption as consumption

    ids = []
    for n, step in enumerate((1, 2, 3)):
        customer = Customer(account_no=f"02010000010{n}", name="张伟", address="广州市海珠区江南大道中 1 号",
                            category=CustomerCategory.RESIDENTIAL)
        meter = Meter(asset_no=f"CH-{n}", customer=customer, multiplier=Decimal("1"), installed_on=date(2020, 1, 1))
        session.add(meter)
        session.flush()
        session.add_all(Reading(meter_id=meter.id, read_date=_day(d), register=A, value=Decimal(step * d))
                        for d in range(0, 32))
        ids.append(customer.id)
    session.commit()
    monkeypatch.setattr(consumption, "IN_CHUNK", 2)
    result = consumption.load_consumptions(session, ids, OCT_1, OCT_31)
    assert [result[i].active_kwh for i in ids] == [Decimal("31"), Decimal("62"), Decimal("93")]
