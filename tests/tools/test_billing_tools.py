"""lookup_bill, explain_bill and payment_status against bills computed by the billing core."""

from __future__ import annotations

import re

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from billing_core.operations.dunning import late_fee
from billing_core.db.models import (
    Bill, BillStatus, Customer, Meter, PaymentChannel, PaymentStatus, Reading, ReadingRegister, ReadingSource,
)
from billing_core.number_text import quantity_text
from tests.tools.conftest import ACCOUNT_A, ACCOUNT_C, World
from tests.tools.factories import add_bill, pay
from tools.registry import call_tool

TODAY = date(2026, 6, 26)


def _bill(world: World, key: str) -> Bill:
    with world.sessions() as session:
        bill = session.get(Bill, world.bill_ids[key])
        assert bill is not None
        _ = bill.lines
        return bill


def _verified(world: World, account: str = ACCOUNT_A, last4: str = "8000", conversation: str = "conv-1"):
    ctx = world.ctx(conversation)
    assert call_tool(ctx, "verify_identity", {"account_no": account, "last4": last4}).status == "verified"
    return ctx


def test_lookup_one_period_reports_stored_figures_and_late_fee(world: World) -> None:
    may = _bill(world, "A:2026-05")
    result = call_tool(_verified(world), "lookup_bill", {"period": "2026-05"})
    assert result.status == "ok"
    [summary] = result.bills
    assert (summary.amount, summary.total_kwh) == (may.amount, may.total_kwh)
    assert summary.due_date == date(2026, 6, 15)
    assert summary.status == "overdue" and summary.outstanding == may.amount
    assert summary.late_fee_so_far == late_fee(may.amount, date(2026, 6, 15), TODAY, "residential").amount
    assert result.arrears_total == may.amount  # April is paid
    assert str(may.amount) in result.message and "已逾期" in result.message


def test_lookup_latest_n_newest_first_and_chinese_month(world: World) -> None:
    ctx = _verified(world)
    result = call_tool(ctx, "lookup_bill", {"latest": 3})
    assert [b.period for b in result.bills] == ["2026-05", "2026-04", "2025-05"]
    assert [b.status for b in result.bills] == ["overdue", "paid", "paid"]
    assert call_tool(ctx, "lookup_bill", {"period": "2026年4月"}).bills[0].period == "2026-04"
    bad = call_tool(ctx, "lookup_bill", {"period": "五月"})
    assert bad.status == "invalid_input" and bad.field == "period"
    assert call_tool(ctx, "lookup_bill", {"period": "2024-01"}).status == "not_found"


def test_explain_bill_lines_come_from_the_stored_bill(world: World) -> None:
    may = _bill(world, "A:2026-05")
    result = call_tool(_verified(world), "explain_bill", {"period": "2026-05"})
    assert result.status == "ok"
    assert [(l.code, l.amount, l.explanation) for l in result.lines] == [
        (l.code, l.amount, l.explanation) for l in may.lines]
    assert sum(l.amount for l in result.lines) == result.amount == may.amount


def test_explain_bill_gives_typed_reasons_versus_last_month(world: World) -> None:
    may, april = _bill(world, "A:2026-05"), _bill(world, "A:2026-04")
    result = call_tool(_verified(world), "explain_bill", {"period": "2026-05"})
    comparison = result.vs_previous_month
    assert comparison.other_period == "2026-04"
    assert comparison.amount_change == may.amount - april.amount
    kinds = {r.kind: r for r in comparison.reasons}
    assert kinds["consumption_change"].change_kwh == Decimal("180")
    assert kinds["consumption_change"].change_percent == Decimal("60.0")
    # April is non-summer (200/400), May summer (260/600): the season reason carries both limits.
    season = kinds["season_change"]
    assert (season.this_season, season.other_season) == ("summer", "non_summer")
    assert season.other_limits[0] < season.this_limits[0]
    tiers = kinds["tier_crossing"]
    tier_2_may = sum(l.quantity for l in may.lines if l.code == "tier_2")
    tier_2_april = sum(l.quantity for l in april.lines if l.code == "tier_2")
    assert (tiers.this_tier_2_kwh, tiers.other_tier_2_kwh) == (tier_2_may, tier_2_april)
    assert tiers.this_limits == season.this_limits
    # Customers read kWh as written on a bill: no storage padding such as 「94.530000」.
    assert f"本期第二档 {quantity_text(tier_2_may)}、" in tiers.text
    assert not re.search(r"\d\.\d*0 千瓦时", tiers.text + kinds["consumption_change"].text)
    assert kinds["period_days"].this_days == 31 and kinds["period_days"].other_days == 30
    back = kinds["back_charge"]
    assert back.bill == "this" and back.kwh == Decimal("20")
    assert back.amount == next(l.amount for l in may.lines if l.code == "back_charge")
    late = kinds["late_fee"]
    assert late.bill == "this"
    assert late.amount == late_fee(may.amount, date(2026, 6, 15), TODAY, "residential").amount
    assert "tariff_version_change" not in kinds  # same residential tariff version both months
    # Same month last year: same season, no season reason.
    last_year = result.vs_same_month_last_year
    assert last_year.other_period == "2025-05"
    assert "season_change" not in {r.kind for r in last_year.reasons}
    assert result.decrease_vs_previous_month is None  # May went up: nothing to say about a drop
    assert result.consumption_reason == kinds["consumption_change"].text


def test_explain_bill_says_by_how_much_a_lower_bill_went_down(world: World) -> None:
    april = _bill(world, "A:2026-04")
    with world.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.account_no == ACCOUNT_A)).one()
        march = add_bill(session, customer, "2026-03", "520", due_date=date(2026, 4, 15))
        session.commit()
        march_amount = march.amount
    result = call_tool(_verified(world), "explain_bill", {"period": "2026-04"})
    assert march_amount > april.amount
    assert result.decrease_vs_previous_month == march_amount - april.amount  # the billing core's figures
    assert result.consumption_reason is not None and "减少" in result.consumption_reason


def test_explain_bill_two_part_customer_pf_and_monthly_price_versions(world: World) -> None:
    may, april = _bill(world, "C:2026-05"), _bill(world, "C:2026-04")
    ctx = world.ctx("conv-c")
    assert call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_C, "last4": "0000"}).status == "verified"
    result = call_tool(ctx, "explain_bill", {})
    assert result.period == "2026-05"
    kinds = {r.kind: r for r in result.vs_previous_month.reasons}
    pf = kinds["pf_adjustment"]
    assert pf.this_amount == next(l.amount for l in may.lines if l.code == "pf_adjustment")
    assert pf.other_amount == next(l.amount for l in april.lines if l.code == "pf_adjustment")
    assert pf.this_amount > 0 > pf.other_amount  # a surcharge this month, a discount last month
    versions = kinds["tariff_version_change"]
    assert versions.added == ["gd-agency-purchase@2026-05"]
    assert versions.removed == ["gd-agency-purchase@2026-04"]
    assert "season_change" not in kinds and "tier_crossing" not in kinds
    assert result.vs_same_month_last_year is None and result.missing_comparisons


def test_payment_status_paid_bill_shows_channel_and_time(world: World) -> None:
    result = call_tool(_verified(world), "payment_status", {"period": "2026-04"})
    assert result.payment_state == "paid" and result.outstanding == 0
    [payment] = result.payments
    assert payment.channel == "wechat_pay" and payment.channel_cn == "微信支付"
    assert "2026-05-10 12:00" in result.message  # 04:00 UTC shown in Guangzhou time


def test_payment_status_overdue_bill_has_the_billing_core_late_fee(world: World) -> None:
    may = _bill(world, "A:2026-05")
    result = call_tool(_verified(world), "payment_status", {})
    expected = late_fee(may.amount, date(2026, 6, 15), TODAY, "residential")
    assert result.period == "2026-05" and result.payment_state == "overdue"
    assert result.days_overdue == 11 == expected.days
    assert result.late_fee.amount == expected.amount and result.late_fee.explanation == expected.explanation()
    assert {c.code for c in result.how_to_pay} >= {"wechat_pay", "alipay", "counter", "bank_withholding"}
    assert str(expected.amount) in result.message


def test_partial_payment_leaves_the_rest_owed_and_the_late_fee_on_the_rest(world: World) -> None:
    from billing_core.db.models import PaymentChannel
    from tests.tools.factories import pay

    with world.sessions() as session:
        may = session.get(Bill, world.bill_ids["A:2026-05"])
        part = (may.amount / 2).quantize(Decimal("0.01"))
        pay(session, may, part, channel=PaymentChannel.ALIPAY)
        session.commit()
        rest = may.amount - part
    result = call_tool(_verified(world), "payment_status", {"period": "2026-05"})
    assert result.payment_state == "overdue" and result.paid == part and result.outstanding == rest
    assert result.late_fee.principal == rest
    assert result.late_fee.amount == late_fee(rest, date(2026, 6, 15), TODAY, "residential").amount
    assert [p.channel_cn for p in result.payments] == ["支付宝"]


def test_partial_payments_count_only_succeeded_ones_and_unissued_bills_stay_hidden(world: World) -> None:
    """What was paid comes from succeeded payments only (the paid sum is read with the bills)."""
    with world.sessions() as session:
        may = session.get(Bill, world.bill_ids["A:2026-05"])
        assert may is not None
        pay(session, may, Decimal("100.00"), channel=PaymentChannel.ALIPAY,
            paid_at=datetime(2026, 6, 20, 2, 0, tzinfo=UTC))
        pay(session, may, Decimal("50.00"), channel=PaymentChannel.COUNTER,
            paid_at=datetime(2026, 6, 18, 2, 0, tzinfo=UTC))
        failed = pay(session, may, Decimal("30.00"), channel=PaymentChannel.WECHAT_PAY)
        failed.status = PaymentStatus.FAILED
        may.status = BillStatus.PARTIALLY_PAID
        customer = session.scalar(select(Customer).where(Customer.account_no == ACCOUNT_A))
        add_bill(session, customer, "2026-06", "200", status=BillStatus.COMPUTED, due_date=date(2026, 7, 15))
        session.commit()
        amount = may.amount
    ctx = _verified(world)
    [summary] = call_tool(ctx, "lookup_bill", {"latest": 1}).bills
    assert summary.period == "2026-05"  # the computed June bill is not shown
    assert summary.paid == Decimal("150.00") and summary.outstanding == amount - Decimal("150.00")
    assert summary.status == "overdue"
    assert call_tool(ctx, "lookup_bill", {"latest": 1}).arrears_total == amount - Decimal("150.00")
    june = call_tool(ctx, "lookup_bill", {"period": "2026-06"})
    assert june.status == "not_found" and "正在核算" in june.message
    status = call_tool(ctx, "payment_status", {"period": "2026-05"})
    assert status.paid == Decimal("150.00") and status.outstanding == amount - Decimal("150.00")
    assert [(p.amount, p.channel) for p in status.payments] == [
        (Decimal("50.00"), "counter"), (Decimal("100.00"), "alipay")]  # by time paid, failed one left out


def _meter_readings(world: World, readings: dict[date, tuple[str, ReadingSource]]) -> None:
    with world.sessions() as session:
        customer = session.scalars(select(Customer).where(Customer.account_no == ACCOUNT_A)).one()
        meter = Meter(asset_no="0300012345678", customer_id=customer.id, installed_on=date(2020, 1, 1))
        session.add(meter)
        session.flush()
        session.add_all(Reading(meter_id=meter.id, read_date=day, register=ReadingRegister.ACTIVE_TOTAL,
                                value=Decimal(value), source=source) for day, (value, source) in readings.items())
        session.commit()


def test_explain_bill_says_the_bill_rests_on_an_estimated_reading(world: World) -> None:
    _meter_readings(world, {date(2026, 4, 30): ("1000", ReadingSource.DAILY),
                            date(2026, 5, 31): ("1480", ReadingSource.ESTIMATED)})
    result = call_tool(_verified(world), "explain_bill", {"period": "2026-05"})
    assert result.estimated_reading is True
    assert [(r.role, r.day, r.value, r.estimated) for r in result.readings] == [
        ("opening", date(2026, 4, 30), Decimal("1000"), False), ("closing", date(2026, 5, 31), Decimal("1480"), True)]
    assert "估计值（估抄）" in result.reading_note and "2026年5月31日的示数 1480" in result.reading_note
    assert result.reading_note in result.message  # said whatever the customer asked
    april = call_tool(_verified(world, conversation="conv-2"), "explain_bill", {"period": "2026-04"})
    assert april.estimated_reading is False and "2026年4月30日" in april.reading_note  # its closing one
    older = call_tool(_verified(world, conversation="conv-3"), "explain_bill", {"period": "2025-05"})
    assert older.estimated_reading is None and older.reading_note is None and not older.readings


def test_explain_bill_with_actual_readings_says_it_was_not_estimated(world: World) -> None:
    _meter_readings(world, {date(2026, 4, 30): ("1000", ReadingSource.ESTIMATED),
                            date(2026, 5, 31): ("1480", ReadingSource.DAILY)})
    result = call_tool(_verified(world), "explain_bill", {"period": "2026-05"})
    assert result.estimated_reading is True  # opened on April's estimate: May carries its correction
    assert "本期起始示数是上期的估计值" in result.reading_note and "已包含对上期估抄的更正" in result.reading_note
    with world.sessions() as session:
        for reading in session.scalars(select(Reading)):
            reading.source = ReadingSource.DAILY
        session.commit()
    actual = call_tool(_verified(world, conversation="conv-2"), "explain_bill", {"period": "2026-05"})
    assert actual.estimated_reading is False and "不是估抄" in actual.reading_note
    assert actual.reading_note not in actual.message  # an actual reading is said only when asked
