"""The cycle's bulk read step (`load_consumptions`) gives exactly what one customer's readings give.

`load_consumptions` reads every customer's meters and readings of a chunk in two streamed Core
queries and groups them itself; `compute_consumption` groups one customer's readings as given.
These tests read each customer separately through the ORM (the plain path) and require the same
`Consumption` — totals with their exponents, per-day kWh, anomalies and messages — and the same
bill `Usage`, on the demo utility and on hand-made anomaly cases, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.bill_types import CustomerCategory, DailyUsage, TouUsage, Usage
from billing_core.consumption import (
    AnomalyKind,
    Consumption,
    MeterInfo,
    ReadingValue,
    compute_consumption,
    load_consumptions,
)
from billing_core.demo.seed import seed_demo
from billing_core.db.models import Customer, Meter, Reading, ReadingRegister
from billing_core.periods import period_bounds

A = ReadingRegister.ACTIVE_TOTAL


def _one_by_one(session: Session, customer_id: int, start: date, end: date) -> Consumption:
    """The plain path: this customer's meters and all their readings, via the ORM, no bulk grouping."""
    session.expire_all()  # the values as stored (Numeric(16, 3)), not the Decimals the test created
    meters = [MeterInfo.from_row(m) for m in session.scalars(
        select(Meter).where(Meter.customer_id == customer_id, Meter.installed_on <= end))
        if m.removed_on is None or m.removed_on >= start - timedelta(days=1)]
    ids = [m.meter_id for m in meters]
    readings = [ReadingValue(r.meter_id, r.read_date, r.register, r.value, r.source) for r in session.scalars(
        select(Reading).where(Reading.meter_id.in_(ids), Reading.read_date >= start - timedelta(days=62),
                              Reading.read_date <= end))]
    return compute_consumption(meters, readings, start, end)


def _usage_or_refusal(consumption: Consumption) -> str:
    return "refused" if consumption.needs_review else repr(consumption.to_usage())


def _assert_same(session: Session, ids: list[int], start: date, end: date) -> dict[int, Consumption]:
    bulk = load_consumptions(session, ids, start, end)
    assert list(bulk) == ids
    for cid in ids:
        plain = _one_by_one(session, cid, start, end)
        assert repr(bulk[cid]) == repr(plain), (cid, start)  # repr: Decimal exponents must match too
        assert _usage_or_refusal(bulk[cid]) == _usage_or_refusal(plain), (cid, start)
    return bulk


def test_bulk_read_equals_per_customer_read_on_the_demo_utility(session: Session, tmp_path: Path) -> None:
    summary = seed_demo(session, customers=40, seed=7, statement_dir=tmp_path / "demo")
    session.commit()
    ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    kinds: set[AnomalyKind] = set()
    for month in ("2025-10", "2026-01", "2026-03", "2026-07", "2026-10"):
        start, end = period_bounds(month)
        kinds |= {a.kind for c in _assert_same(session, ids, start, end).values() for a in c.anomalies}
    # A period that is not a calendar month (a meter read on the 15th).
    _assert_same(session, ids, date(2026, 4, 15), date(2026, 5, 14))
    # The demo has backwards readings and missing days; the comparison above covered them.
    assert summary.backwards_accounts and summary.missing_day_accounts
    assert {AnomalyKind.READING_DECREASED, AnomalyKind.MISSING_DAYS} <= kinds


def _customer(session: Session, n: int) -> Customer:
    customer = Customer(account_no=f"0201000002{n:02d}", name="王芳",
                        address="广州市天河区体育西路 2 号", category=CustomerCategory.RESIDENTIAL)
    session.add(customer)
    session.flush()
    return customer


def _meter(asset_no: str, customer: Customer, multiplier: str, installed_on: date, **extra: object) -> Meter:
    return Meter(asset_no=asset_no, customer_id=customer.id, multiplier=Decimal(multiplier),
                 installed_on=installed_on, **extra)


def _readings(meter: Meter, values: dict[date, str], register: ReadingRegister = A) -> list[Reading]:
    return [Reading(meter_id=meter.id, read_date=day, register=register, value=Decimal(v))
            for day, v in values.items()]


def test_bulk_read_keeps_every_anomaly_and_the_multiplier_and_replacement_rules(session: Session) -> None:
    start, end = date(2026, 10, 1), date(2026, 10, 31)
    days = [start - timedelta(days=1) + timedelta(days=n) for n in range(32)]  # 30 Sep … 31 Oct

    backwards = _customer(session, 1)  # 示数倒走 on 10 October, no replacement record
    meter_b = _meter("BULK-B", backwards, "1", date(2024, 1, 1))
    replaced = _customer(session, 2)  # 换表 on 20 October, new CT ratio: 1 → 40
    old = _meter("BULK-OLD", replaced, "1", date(2020, 1, 1),
                 removed_on=days[20], final_reading=Decimal("1220.5"))
    gaps = _customer(session, 3)  # 漏抄 on 5 and 6 October; a two-part meter with TOU and demand
    meter_g = _meter("BULK-G", gaps, "200", date(2024, 1, 1))
    # removed long before the period: its meter and readings are not part of it
    gone = _meter("BULK-GONE", gaps, "1", date(2019, 1, 1), removed_on=date(2026, 8, 1))
    nothing = _customer(session, 4)  # a meter with no reading at all
    meter_n = _meter("BULK-N", nothing, "1", date(2024, 1, 1))
    # No reading from 27 September to 2 October (the period opens on the 26th's reading), and a
    # reactive register that stopped in August: only readings before the opening day tell.
    late = _customer(session, 5)
    meter_l = _meter("BULK-L", late, "1", date(2024, 1, 1))
    session.add_all([meter_b, old, meter_g, gone, meter_n, meter_l])
    session.flush()
    new = _meter("BULK-NEW", replaced, "40", days[20], replaced_meter_id=old.id)
    session.add(new)
    session.flush()

    rows = _readings(meter_b, {d: str(500 + 3 * n - (40 if n == 10 else 0)) for n, d in enumerate(days)})
    rows += _readings(old, {d: str(1000 + 11 * n) for n, d in enumerate(days[:20])})
    rows += _readings(new, {d: str(2 * (n - 20)) for n, d in enumerate(days) if n >= 20})
    kept = [(n, d) for n, d in enumerate(days) if n not in (5, 6)]
    for register, step in ((A, 10), (ReadingRegister.PEAK, 3), (ReadingRegister.FLAT, 4),
                           (ReadingRegister.VALLEY, 3), (ReadingRegister.REACTIVE_TOTAL, 5)):
        rows += _readings(meter_g, {d: f"{100 + step * n}.25" for n, d in kept}, register)
    rows += _readings(meter_g, {d: f"{1 + n % 7}.125" for n, d in kept}, ReadingRegister.MAX_DEMAND)
    rows += _readings(gone, {d: str(n) for n, d in enumerate(days)})
    history = [start - timedelta(days=n) for n in range(70, 0, -1)] + days[1:]  # 23 July … 31 Oct
    rows += _readings(meter_l, {d: str(5 * n) for n, d in enumerate(history)
                                if not start - timedelta(days=5) < d < start + timedelta(days=2)})
    rows += _readings(meter_l, {d: "7" for d in history if d < date(2026, 8, 20)}, ReadingRegister.REACTIVE_TOTAL)
    session.add_all(rows)
    session.commit()

    ids = [backwards.id, replaced.id, gaps.id, nothing.id, late.id]
    result = _assert_same(session, ids, start, end)

    (drop,) = result[backwards.id].anomalies
    assert drop.kind is AnomalyKind.READING_DECREASED and drop.day == days[10]
    assert (drop.previous, drop.current) == (Decimal("527"), Decimal("490"))
    assert result[backwards.id].active_kwh is None and result[backwards.id].needs_review

    swap = result[replaced.id]  # old: 1220.5 − 1000; new: (22 − 0) × 40
    assert swap.active_kwh == Decimal("220.5") + Decimal("22") * 40 and not swap.anomalies
    by_day = {d.day: d.registers[A] for d in swap.daily}  # the final reading closes the old meter's day
    assert by_day[days[20]] == Decimal("1220.5") - 1209 and by_day[days[21]] == 2 * 40
    assert sum(by_day.values()) == swap.active_kwh and len(by_day) == 31

    two_part = result[gaps.id]
    assert two_part.missing_days == [days[5], days[6]] and not two_part.needs_review
    assert two_part.active_kwh == Decimal(10 * 31 * 200) and two_part.max_demand_kw == Decimal("7.125") * 200
    assert two_part.registers[ReadingRegister.REACTIVE_TOTAL] == Decimal(5 * 31 * 200)
    assert [a.kind for a in two_part.anomalies] == [AnomalyKind.MISSING_DAYS]
    usage = two_part.to_usage()
    assert usage.tou == TouUsage(peak=Decimal(3 * 31 * 200), flat=Decimal(4 * 31 * 200),
                                 valley=Decimal(3 * 31 * 200)) and usage.daily is None

    assert [a.kind for a in result[nothing.id].anomalies] == [AnomalyKind.NO_READINGS]

    opened_late = result[late.id]  # 31 October's reading − 26 September's
    assert opened_late.active_kwh == 5 * ((end - history[0]).days - (start - timedelta(days=5) - history[0]).days)
    assert opened_late.missing_days[:2] == [days[1], days[2]] and opened_late.daily == []
    assert opened_late.registers[ReadingRegister.REACTIVE_TOTAL] == 0  # no reactive reading in the period


def test_fast_daily_usage_is_what_validation_would_build() -> None:
    """`to_usage` skips re-validating per-day kWh it computed; the objects must be the validated ones."""
    meter = MeterInfo(1, "M-1", Decimal("1.0000"), date(2024, 1, 1))
    days = [date(2026, 9, 30) + timedelta(days=n) for n in range(32)]
    for registers in ({A: "7.5"}, {A: "10", ReadingRegister.PEAK: "3", ReadingRegister.FLAT: "4",
                                   ReadingRegister.VALLEY: "3"}):
        readings = [ReadingValue(1, d, r, Decimal(step) * n + Decimal("0.125"))
                    for r, step in registers.items() for n, d in enumerate(days)]
        usage = compute_consumption([meter], readings, days[1], days[-1]).to_usage()
        assert usage.daily is not None and len(usage.daily) == 31
        validated = Usage.model_validate(usage.model_dump())
        assert usage == validated and repr(usage) == repr(validated)
        assert all(type(d) is DailyUsage and d.model_fields_set == {"day", "kwh", "tou"} for d in usage.daily)
