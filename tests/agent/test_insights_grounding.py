"""The grounding guard accepts the insights tools' figures and still catches an invented one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from agent.grounding import check_reply, evidence_from
from billing_core.bill_types import CustomerCategory
from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade as upgrade_billing
from billing_core.db.models import Customer
from billing_core.demo.seed import seed_demo
from tools.context import ToolContext
from tools.migrate import upgrade as upgrade_tools
from tools.registry import call_tool

NOW = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)


def test_replies_quoting_insights_tools_are_grounded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade_billing(url)
    upgrade_tools(url)
    engine = make_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    with sessions() as session:
        seed_demo(session, customers=40, seed=7, statement_dir=tmp_path)
        session.commit()
        shop = session.scalars(select(Customer).where(Customer.category == CustomerCategory.CI_SINGLE)
                               .order_by(Customer.id)).first()
        account, last4 = shop.account_no, shop.phone[-4:]
    ctx = ToolContext(conversation_id="conv-g", channel="web", session_factory=sessions, clock=lambda: NOW)
    assert call_tool(ctx, "verify_identity", {"account_no": account, "last4": last4}).status == "verified"
    results = {name: call_tool(ctx, name, {}) for name in ("forecast_bill", "usage_insights", "saving_advice")}
    assert all(r.status == "ok" for r in results.values())
    evidence = evidence_from(results.values())
    for result in results.values():
        checked = check_reply(result.message, evidence)
        assert checked.grounded, (result.message, checked.violations)
    f = results["forecast_bill"].forecast
    paraphrase = (f"截至{f.last_read_day}，本月已用电{f.kwh_so_far}千瓦时，电费{f.amount_so_far}元；预计全月"
                  f"{f.forecast_kwh}千瓦时，电费约{f.forecast_amount}元，{f.interval_percent}%区间"
                  f"{f.forecast_amount_low}元至{f.forecast_amount_high}元。")
    assert check_reply(paraphrase, evidence).grounded
    first = results["saving_advice"].items[0]
    assert check_reply(f"{first.title}，每月约省{first.saving}元。", evidence).grounded
    invented = check_reply(f"预计全月电费约{f.forecast_amount + 37}元。", evidence)
    assert not invented.grounded
    engine.dispose()
