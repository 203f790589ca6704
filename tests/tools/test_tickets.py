"""open_dispute, intake_complaint and transfer_to_human: work orders, SLA dates, duplicates."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from billing_core.db.models import WorkOrder, WorkOrderKind, WorkOrderPriority, WorkOrderStatus
from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World
from tools.models import HandoffRequest
from tools.registry import call_tool
from tools.service_policy import load_policy
from tools.transfer_to_human import waiting_handoffs

GZ = ZoneInfo("Asia/Shanghai")


def _verified(world: World, conversation: str = "conv-1", account: str = ACCOUNT_A, last4: str = "8000"):
    ctx = world.ctx(conversation)
    assert call_tool(ctx, "verify_identity", {"account_no": account, "last4": last4}).status == "verified"
    return ctx


def test_dispute_opens_a_work_order_with_working_day_deadlines(world: World) -> None:
    result = call_tool(_verified(world), "open_dispute",
                       {"period": "2026-05", "category": "amount_too_high", "reason": "这个月电费比上月多了一百多"})
    assert result.status == "opened" and result.ticket_no == "WO202606260001"
    # Friday 10:00 → contact by Monday 10:00 (1 working day), answer by next Friday (5 working days).
    assert result.contact_due_at == datetime(2026, 6, 29, 10, 0, tzinfo=GZ)
    assert result.answer_due_at == datetime(2026, 7, 3, 10, 0, tzinfo=GZ)
    assert "1个工作日内联系" in result.commitment and "5个工作日内答复" in result.commitment
    with world.sessions() as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.no == result.ticket_no))
        assert order is not None
        assert (order.kind, order.account_no, order.period, order.status) == (
            WorkOrderKind.DISPUTE, ACCOUNT_A, "2026-05", WorkOrderStatus.OPEN)
        assert order.bill_id == world.bill_ids["A:2026-05"]
        assert order.description == "这个月电费比上月多了一百多" and order.channel == "web"
        assert order.sla_due_at == result.contact_due_at
        assert order.payload["category"] == "amount_too_high"


def test_a_second_dispute_for_the_same_bill_is_refused_and_names_the_open_one(world: World) -> None:
    ctx = _verified(world)
    first = call_tool(ctx, "open_dispute",
                      {"period": "2026-05", "category": "reading_wrong", "reason": "读数不对"})
    again = call_tool(ctx, "open_dispute",
                      {"period": "2026-05", "category": "amount_too_high", "reason": "还是太高"})
    assert again.status == "duplicate" and again.open_ticket_no == first.ticket_no
    assert first.ticket_no in again.message
    # Another month is a different bill: allowed.
    other = call_tool(ctx, "open_dispute", {"period": "2026-04", "category": "other", "reason": "四月也有疑问"})
    assert other.status == "opened" and other.ticket_no == "WO202606260002"
    # Once the first is resolved, a new dispute for May may be opened.
    with world.sessions() as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.no == first.ticket_no))
        order.status = WorkOrderStatus.RESOLVED
        session.commit()
    reopened = call_tool(ctx, "open_dispute", {"period": "2026-05", "category": "other", "reason": "结果不认可"})
    assert reopened.status == "opened"


def test_dispute_for_a_month_without_an_issued_bill_is_not_found(world: World) -> None:
    result = call_tool(_verified(world), "open_dispute",
                       {"period": "2026-06", "category": "other", "reason": "没账单"})
    assert result.status == "not_found"


def test_holidays_in_the_policy_push_the_deadlines(world: World) -> None:
    policy = load_policy().model_copy(update={"holidays": [date(2026, 6, 29)]})
    ctx = world.ctx("conv-h", policy=policy)
    call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    result = call_tool(ctx, "open_dispute", {"period": "2026-05", "category": "other", "reason": "节假日测试"})
    assert result.contact_due_at == datetime(2026, 6, 30, 10, 0, tzinfo=GZ)
    assert result.answer_due_at == datetime(2026, 7, 6, 10, 0, tzinfo=GZ)


def test_complaint_sla_normal_and_urgent(world: World) -> None:
    ctx = _verified(world)
    normal = call_tool(ctx, "intake_complaint", {"category": "service_attitude", "description": "营业厅态度差"})
    assert normal.contact_due_at == datetime(2026, 6, 27, 10, 0, tzinfo=GZ)  # 24 hours
    assert normal.answer_due_at == datetime(2026, 7, 3, 10, 0, tzinfo=GZ)
    repeated = call_tool(ctx, "intake_complaint", {"category": "service_attitude", "description": "营业厅态度差"})
    assert repeated.status == "duplicate" and repeated.open_ticket_no == normal.ticket_no
    urgent = call_tool(ctx, "intake_complaint", {"category": "other", "description": "表箱冒烟没人来",
                                                 "urgent": True, "contact": "139 0000 1111"})
    assert urgent.contact_due_at == datetime(2026, 6, 26, 12, 0, tzinfo=GZ)  # 2 hours
    with world.sessions() as session:
        complaints = session.scalars(select(WorkOrder).where(WorkOrder.kind == WorkOrderKind.COMPLAINT))
        rows = {o.no: o for o in complaints}
        assert rows[urgent.ticket_no].priority == WorkOrderPriority.URGENT
        assert rows[urgent.ticket_no].contact == "13900001111"
        assert rows[normal.ticket_no].contact == "13800138000"  # the registered phone
    bad = call_tool(ctx, "intake_complaint",
                    {"category": "other", "description": "x" * 5, "contact": "12345"})
    assert bad.status == "invalid_input" and bad.field == "contact"


def test_transfer_to_human_works_unverified_and_is_not_duplicated(world: World) -> None:
    ctx = world.ctx("conv-t")
    first = call_tool(ctx, "transfer_to_human", {"reason": "customer_asked", "summary": "客户要求人工"})
    assert first.status == "transferred" and first.queue_position == 1
    again = call_tool(ctx, "transfer_to_human", {"reason": "customer_asked", "summary": "再次要求"})
    assert again.handoff_no == first.handoff_no
    other = call_tool(_verified(world, "conv-u"), "transfer_to_human",
                      {"reason": "out_of_scope", "summary": "问停电报修"})
    assert other.queue_position == 2
    with world.sessions() as session:
        stored = {h.no: h for h in session.scalars(select(HandoffRequest))}
        assert stored[first.handoff_no].account_no is None
        assert stored[other.handoff_no].account_no == ACCOUNT_A
        assert stored[other.handoff_no].summary == "问停电报修"
        queue = waiting_handoffs(session)
    assert [(h.handoff_no, h.reason) for h in queue] == [(first.handoff_no, "customer_asked"),
                                                         (other.handoff_no, "out_of_scope")]


def test_write_tools_need_verification(world: World) -> None:
    ctx = world.ctx("anon")
    for name, args in (("open_dispute", {"period": "2026-05", "category": "other", "reason": "想投诉"}),
                       ("intake_complaint", {"category": "other", "description": "想投诉"})):
        assert call_tool(ctx, name, args).status == "needs_verification"
    with world.sessions() as session:
        assert session.scalars(select(WorkOrder)).all() == []
    # B's own dispute goes on B's bill.
    b = _verified(world, "conv-b", ACCOUNT_B, "9000")
    result = call_tool(b, "open_dispute", {"period": "2026-05", "category": "other", "reason": "B的异议"})
    with world.sessions() as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.no == result.ticket_no))
        assert order.account_no == ACCOUNT_B and order.bill_id == world.bill_ids["B:2026-05"]


def test_two_simultaneous_disputes_for_one_bill_give_one_ticket(world: World) -> None:
    import threading

    contexts = [_verified(world, f"race-{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def run(index: int) -> None:
        barrier.wait()
        results[index] = call_tool(contexts[index], "open_dispute",
                                   {"period": "2026-05", "category": "other", "reason": f"并发{index}"})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.status for r in results) == ["duplicate", "opened"]
    opened = next(r for r in results if r.status == "opened")
    duplicate = next(r for r in results if r.status == "duplicate")
    assert duplicate.open_ticket_no == opened.ticket_no
    with world.sessions() as session:
        orders = session.scalars(select(WorkOrder).where(WorkOrder.kind == WorkOrderKind.DISPUTE)).all()
    assert [o.no for o in orders] == [opened.ticket_no]
