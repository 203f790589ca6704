"""explain_bill shows a 违约金 line the billing cycle put on a bill, in Chinese, as stored."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from billing_core.bill_types import LATE_FEE_LINE_CODE
from billing_core.operations.dunning_store import run_dunning
from billing_core.operations.late_fees import put_late_fees_on_bills
from billing_core.db.models import Bill, Customer
from billing_core.db.operations_models import LateFeeAccrual
from tests.tools.conftest import ACCOUNT_A, World
from tests.tools.factories import add_bill
from tools.registry import call_tool


def test_explain_bill_shows_the_late_fee_line_of_the_overdue_bill(world: World) -> None:
    with world.sessions() as session:
        run_dunning(session, date(2026, 6, 26))  # A's May bill is 11 days overdue
        customer = session.scalar(select(Customer).where(Customer.account_no == ACCOUNT_A))
        june = add_bill(session, customer, "2026-06", "480", due_date=date(2026, 7, 15))
        energy = june.amount
        added = put_late_fees_on_bills(session, {customer.id: (june.id, len(june.lines) + 1)}, date(2026, 6, 26))
        fee = session.scalar(select(LateFeeAccrual.amount).where(LateFeeAccrual.bill_id == world.bill_ids["A:2026-05"]))
        session.commit()
        june_id = june.id
    assert added == {june_id: fee}

    ctx = world.ctx()
    assert call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"}).status == "verified"
    result = call_tool(ctx, "explain_bill", {"period": "2026-06"})
    assert result.status == "ok" and result.amount == energy + fee
    [line] = [l for l in result.lines if l.code == LATE_FEE_LINE_CODE]
    assert line.name == "违约金" and line.amount == fee
    assert "2026-05" in line.explanation and f"GD202605{ACCOUNT_A}" in line.explanation
    assert "不计入电费" in line.explanation
    change = {c.code: c for c in result.vs_previous_month.line_changes}[LATE_FEE_LINE_CODE]
    assert (change.name, change.this_amount, change.other_amount) == ("违约金", fee, 0)
    note = next(r for r in result.vs_previous_month.reasons if r.kind == "late_fee")
    assert "下一期账单" in note.text
    with world.sessions() as session:
        assert session.get(Bill, june_id).amount == energy + fee
