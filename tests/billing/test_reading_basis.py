"""`period_readings`: which readings open and close a bill's period, and which of them are estimates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from billing_core.bill_types import CustomerCategory
from billing_core.db.models import Customer, Meter, Reading, ReadingRegister, ReadingSource
from billing_core.reading_basis import period_readings

EST, DAILY = ReadingSource.ESTIMATED, ReadingSource.DAILY


def _customer(session: Session) -> Customer:
    customer = Customer(account_no="020100000301", name="王芳", address="广州市天河区体育西路 2 号",
                        category=CustomerCategory.RESIDENTIAL)
    session.add(customer)
    session.flush()
    return customer


def _meter(session: Session, customer: Customer, asset_no: str, installed_on: date,
           readings: dict[date, tuple[str, ReadingSource]], **extra: object) -> Meter:
    meter = Meter(asset_no=asset_no, customer_id=customer.id, installed_on=installed_on, **extra)
    session.add(meter)
    session.flush()
    session.add_all(Reading(meter_id=meter.id, read_date=day, register=ReadingRegister.ACTIVE_TOTAL,
                            value=Decimal(value), source=source) for day, (value, source) in readings.items())
    # A TOU register's estimate on the closing day is not the active total the kWh come from.
    session.add(Reading(meter_id=meter.id, read_date=date(2026, 5, 31), register=ReadingRegister.PEAK,
                        value=Decimal("1"), source=EST))
    session.flush()
    return meter


def test_an_estimated_closing_reading_is_named_and_the_opening_one_kept(session: Session) -> None:
    customer = _customer(session)
    _meter(session, customer, "M-1", date(2020, 1, 1), {
        date(2026, 4, 29): ("990", DAILY), date(2026, 4, 30): ("1000", DAILY),
        date(2026, 5, 30): ("1300", DAILY), date(2026, 5, 31): ("1320", EST),
        date(2026, 6, 1): ("1330", DAILY),  # next period's: never the closing reading
    })
    found = period_readings(session, customer.id, date(2026, 5, 1), date(2026, 5, 31))
    assert [(r.day, r.value, r.estimated) for r in found.opening] == [(date(2026, 4, 30), Decimal("1000"), False)]
    assert [(r.asset_no, r.day, r.value) for r in found.estimated_closing] == [("M-1", date(2026, 5, 31),
                                                                                Decimal("1320"))]
    assert found.recorded and not found.estimated_opening


def test_the_month_after_an_estimate_opens_on_it(session: Session) -> None:
    customer = _customer(session)
    _meter(session, customer, "M-1", date(2020, 1, 1), {
        date(2026, 4, 30): ("1000", EST), date(2026, 5, 28): ("1290", DAILY),  # readings stop early
    })
    found = period_readings(session, customer.id, date(2026, 5, 1), date(2026, 5, 31))
    assert [r.day for r in found.estimated_opening] == [date(2026, 4, 30)]
    assert [(r.day, r.estimated) for r in found.closing] == [(date(2026, 5, 28), False)]


def test_a_replaced_meter_closes_on_its_removal_and_the_new_one_opens_on_installation(session: Session) -> None:
    customer = _customer(session)
    _meter(session, customer, "OLD", date(2020, 1, 1), {
        date(2026, 4, 30): ("500", DAILY), date(2026, 5, 15): ("650", EST), date(2026, 5, 20): ("700", DAILY),
    }, removed_on=date(2026, 5, 15))
    _meter(session, customer, "NEW", date(2026, 5, 15), {
        date(2026, 5, 15): ("0", DAILY), date(2026, 5, 31): ("160", DAILY)})
    _meter(session, customer, "GONE", date(2020, 1, 1), {date(2026, 3, 31): ("1", EST)},
           removed_on=date(2026, 4, 1))  # off site before the period: not counted
    found = period_readings(session, customer.id, date(2026, 5, 1), date(2026, 5, 31))
    assert [(r.asset_no, r.day) for r in found.opening] == [("OLD", date(2026, 4, 30)), ("NEW", date(2026, 5, 15))]
    assert [(r.asset_no, r.day, r.estimated) for r in found.closing] == [
        ("OLD", date(2026, 5, 15), True), ("NEW", date(2026, 5, 31), False)]


def test_no_readings_is_told_apart_from_actual_ones(session: Session) -> None:
    customer = _customer(session)
    found = period_readings(session, customer.id, date(2026, 5, 1), date(2026, 5, 31))
    assert not found.recorded and not found.opening and not found.estimated_closing
    with pytest.raises(ValueError, match="period_end"):
        period_readings(session, customer.id, date(2026, 5, 31), date(2026, 5, 1))
