"""forecast_bill, usage_insights, saving_advice: the verified customer's figures, from the billing core."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing_core.bill_types import CustomerCategory
from billing_core.db.models import Customer
from billing_core.demo.seed import seed_demo
from billing_core.insights.month import month_forecast
from tools.context import ToolContext
from tools.registry import call_tool

NOW = datetime(2026, 10, 16, 2, 0, tzinfo=UTC)


def _ctx(sessions: sessionmaker[Session], conversation: str) -> ToolContext:
    return ToolContext(conversation_id=conversation, channel="web", session_factory=sessions, clock=lambda: NOW)


def test_insights_tools_answer_for_the_verified_customer_only(sessions: sessionmaker[Session], tmp_path) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        summary = seed_demo(session, customers=40, seed=7, statement_dir=tmp_path)
        session.commit()
        plant = session.scalars(select(Customer).where(Customer.category == CustomerCategory.CI_TWO_PART)
                                .order_by(Customer.id)).first()
        account, last4 = plant.account_no, plant.phone[-4:]
        expected = month_forecast(session, plant, date(2026, 10, 16))
    anonymous = _ctx(sessions, "anon")
    for name in ("forecast_bill", "usage_insights", "saving_advice"):
        assert call_tool(anonymous, name, {}).status == "needs_verification"
    ctx = _ctx(sessions, "conv-insights")
    assert call_tool(ctx, "verify_identity", {"account_no": account, "last4": last4}).status == "verified"

    forecast = call_tool(ctx, "forecast_bill", {})
    assert forecast.status == "ok" and forecast.account_no == account
    out = forecast.forecast
    assert out.period == "2026-10" and out.last_read_day == date(2026, 10, 15)
    assert out.amount_so_far == expected.mtd_bill.total and out.forecast_amount == expected.bill.total
    assert out.forecast_amount_low <= out.forecast_amount <= out.forecast_amount_high
    assert f"{out.forecast_amount} 元" in forecast.message
    assert sum((line.amount for line in out.forecast_lines), Decimal(0)) == out.forecast_amount

    insights = call_tool(ctx, "usage_insights", {})
    assert insights.status == "ok" and insights.market is not None  # two-part plants buy through the grid (agency)
    assert insights.forecast == out and insights.market.forecast_amount == out.forecast_amount
    assert ("未发现用电异常" in insights.message) is (not insights.alerts)

    advice = call_tool(ctx, "saving_advice", {})
    assert advice.status == "ok" and advice.items
    for item in advice.items:
        assert item.text in advice.message and item.lines
        if item.saving is not None and item.code != "basic_charge_mode":
            assert item.saving == item.base_amount - item.what_if_amount
    assert call_tool(ctx, "saving_advice", {"account_no": summary.backwards_accounts[0]}).status == "invalid_input"
