"""Agency / market customers: the month's cost forecast from the monthly price table and the
deviation warning against the customer's usual level (policy threshold)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from statistics import median

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.bill_types import CustomerCategory, PurchaseMode
from billing_core.db.models import Bill, Customer
from billing_core.demo.seed import SeedSummary
from billing_core.insights.policy import load_policy
from billing_core.insights.service import saving_advice_for, usage_insights
from tests.billing.insights_fixtures import demo, demo_database  # noqa: F401

TODAY = date(2026, 10, 28)


def _shop(session: Session, summary: SeedSummary) -> Customer:
    return next(c for c in session.scalars(select(Customer).where(Customer.category == CustomerCategory.CI_SINGLE)
                                           .order_by(Customer.id)) if c.account_no not in summary.backwards_accounts)


def test_agency_customer_outlook_quotes_the_price_table_and_the_usual_level(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    shop = _shop(session, summary)
    insights = usage_insights(session, shop, TODAY)
    outlook = insights.market
    assert outlook is not None and outlook.purchase_mode == "agency"
    assert outlook.forecast_total == insights.forecast.bill.total
    assert [p.tariff_version for p in outlook.prices] == ["gd-agency-purchase@2026-10", "gd-agency-purchase@2026-09"]
    amounts = list(session.scalars(select(Bill.amount).where(Bill.customer_id == shop.id, Bill.period < "2026-10")
                                   .order_by(Bill.period.desc()).limit(6)))
    assert outlook.usual_total == Decimal(median(amounts)).quantize(Decimal("0.01"))
    expected = ((outlook.forecast_total - outlook.usual_total) / outlook.usual_total * 100).quantize(Decimal("0.1"))
    assert outlook.deviation_percent == expected
    assert outlook.warning is (abs(expected) > 20)
    assert f"{outlook.forecast_total} 元" in outlook.message and str(outlook.prices[0].price) in outlook.message
    strict = load_policy().model_copy(update={"market": load_policy().market.model_copy(
        update={"deviation_threshold": Decimal("0.001")})})
    warned = usage_insights(session, shop, TODAY, strict).market
    assert warned.warning and "超过 0% 的提醒阈值" in warned.message


def test_market_customer_is_estimated_at_the_table_price_and_told_so(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    shop = _shop(session, summary)
    shop.purchase_mode = PurchaseMode.MARKET
    session.flush()
    insights = usage_insights(session, shop, TODAY)
    assert insights.market is not None and insights.market.purchase_mode == "market"
    assert "合同" in insights.market.message
    assert any(line.code == "energy_flat" and line.unit_price == Decimal("0.4070")
               for line in insights.forecast.bill.lines)


def test_residential_customer_has_no_market_outlook_and_gets_tier_advice(demo: tuple[Session, SeedSummary]) -> None:
    session, summary = demo
    home = session.scalars(select(Customer).where(Customer.category == CustomerCategory.RESIDENTIAL,
                                                  Customer.household_type == "ordinary",
                                                  Customer.residential_tou.is_(False)).order_by(Customer.id)).first()
    assert usage_insights(session, home, TODAY).market is None
    forecast, items = saving_advice_for(session, home, TODAY)
    assert [i.code for i in items] == ["tier_headroom"] and forecast.kwh is not None
