"""Authorization lives in the tools: the principal comes from the context, never the arguments."""

from __future__ import annotations

from sqlalchemy import select

from billing_core.db.models import WorkOrder
from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World
from tools.audit import audited_call
from tools.lookup_bill import LookupBillInput
from tools.models import AuditEvent
from tools.registry import TOOLS, ToolSpec, call_tool
from tools.results import ToolResult

READ_TOOLS = ("lookup_bill", "explain_bill", "payment_status")
# Valid arguments for each account tool, so only the missing principal can refuse the call.
ACCOUNT_TOOL_ARGS = {
    "bind_wechat": {}, "lookup_bill": {}, "explain_bill": {}, "payment_status": {},
    "open_dispute": {"period": "2026-05", "category": "other", "reason": "读数不对"},
    "intake_complaint": {"category": "other", "description": "营业厅办事太慢了"},
    "contact_info": {}, "change_contact_phone": {"new_phone": "13912345678"},
    "forecast_bill": {}, "usage_insights": {}, "saving_advice": {},
}


def test_no_billing_tool_accepts_an_account_number() -> None:
    for spec in TOOLS:
        fields = set(spec.input_model.model_fields)
        if spec.name == "verify_identity":
            assert "account_no" in fields  # the claim to check, not an access right
            continue
        assert not fields & {"account_no", "account", "customer_id", "openid", "phone"}, spec.name


def test_every_read_tool_needs_verification(world: World) -> None:
    ctx = world.ctx("anon")
    for name in READ_TOOLS:
        result = call_tool(ctx, name, {})
        assert result.status == "needs_verification", name
        assert "户号" in result.message


def test_call_tool_enforces_needs_principal_for_every_account_tool(world: World) -> None:
    assert {spec.name for spec in TOOLS if spec.needs_principal} == set(ACCOUNT_TOOL_ARGS)
    ctx = world.ctx("anon-writes")
    for name, args in ACCOUNT_TOOL_ARGS.items():
        assert call_tool(ctx, name, args).status == "needs_verification", name
    with world.sessions() as session:
        assert session.scalars(select(WorkOrder)).all() == []  # nothing written for nobody


def test_an_account_tool_is_handed_the_principals_customer_only(world: World) -> None:
    seen: list[str] = []

    def probe(_ctx, _session, customer, _args) -> ToolResult:
        seen.append(customer.account_no)
        return ToolResult(status="ok", message="")

    spec = ToolSpec("probe", "", LookupBillInput, probe, needs_principal=True, writes=False)
    ctx = world.ctx("conv-probe")
    assert spec.run(ctx, LookupBillInput()).status == "needs_verification" and seen == []
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    assert spec.run(ctx, LookupBillInput()).status == "ok" and seen == [ACCOUNT_A]


def test_an_account_number_in_the_arguments_is_refused(world: World) -> None:
    ctx = world.ctx()
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    for name in READ_TOOLS:
        result = call_tool(ctx, name, {"account_no": ACCOUNT_B})
        assert result.status == "invalid_input" and result.field == "account_no", name
        assert ACCOUNT_B not in result.model_dump_json().replace(result.message, "")


def test_a_principal_for_a_only_ever_sees_a(world: World) -> None:
    ctx = world.ctx()
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    with world.sessions() as session:
        from billing_core.db.models import Bill

        b_bill = session.get(Bill, world.bill_ids["B:2026-05"])
        b_amount = str(b_bill.amount)
    for name, args in (("lookup_bill", {"latest": 24}), ("explain_bill", {"period": "2026-05"}),
                       ("payment_status", {"period": "2026-05"})):
        dumped = call_tool(ctx, name, args).model_dump_json()
        assert ACCOUNT_B not in dumped and "林美玲" not in dumped, name
        assert b_amount not in dumped, name
    # A 户号 in the customer's words (a dispute reason) changes nothing: the dispute is on A's bill.
    result = call_tool(ctx, "open_dispute", {"period": "2026-05", "category": "other",
                                             "reason": f"请查户号{ACCOUNT_B}的账单"})
    with world.sessions() as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.no == result.ticket_no))
        assert order.account_no == ACCOUNT_A and order.bill_id == world.bill_ids["A:2026-05"]


def test_failing_to_verify_b_leaves_a_verified_but_never_grants_b(world: World) -> None:
    ctx = world.ctx()
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    assert call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_B, "last4": "8000"}).status == "failed"
    assert ctx.principal is not None and ctx.principal.account_no == ACCOUNT_A
    periods = {b.period for b in call_tool(ctx, "lookup_bill", {"latest": 24}).bills}
    assert periods == {"2025-05", "2026-04", "2026-05"}


def test_lock_out_drops_an_earlier_verification(world: World) -> None:
    ctx = world.ctx("conv-x")
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    for tail in ("1111", "2222", "3333"):
        last = call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_B, "last4": tail})
    assert last.status == "locked" and ctx.principal is None
    assert world.ctx("conv-x").restore_principal() is None
    assert call_tool(ctx, "lookup_bill", {}).status == "needs_verification"


def test_every_call_is_audited_with_principal_arguments_and_result(world: World) -> None:
    ctx = world.ctx("conv-audit")
    call_tool(ctx, "lookup_bill", {})
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    call_tool(ctx, "lookup_bill", {"period": "2026-05"})
    call_tool(ctx, "lookup_bill", {"account_no": ACCOUNT_B})
    with world.sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.conversation_id == "conv-audit")
                                 .order_by(AuditEvent.id)).all()
    assert [(e.tool, e.status, e.account_no) for e in events] == [
        ("lookup_bill", "needs_verification", None),
        ("verify_identity", "verified", ACCOUNT_A),
        ("lookup_bill", "ok", ACCOUNT_A),
        ("lookup_bill", "invalid_input", ACCOUNT_A),
    ]
    assert events[2].arguments == {"period": "2026-05"}
    assert events[2].result["bills"][0]["period"] == "2026-05"
    assert events[3].arguments == {"account_no": ACCOUNT_B}  # the attempt itself is on record


def test_a_tool_that_breaks_returns_a_typed_failure_and_is_audited(world: World) -> None:
    def broken(_ctx, _args):
        raise RuntimeError("database went away")

    result = audited_call(world.ctx("conv-err"), "lookup_bill", LookupBillInput, broken, {"latest": 2})
    assert result.status == "error" and "人工" in result.message
    with world.sessions() as session:
        event = session.scalar(select(AuditEvent).where(AuditEvent.conversation_id == "conv-err"))
    assert event.status == "error" and "database went away" in event.error
    assert event.result["status"] == "error"
