"""The needs loop: work orders, hand-offs and open questions with their deadlines, states and overdue flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from agent.experience.voc.cli import app
from agent.experience.voc.needs import needs
from agent.models import Outcome
from billing_core.db.models import WorkOrder, WorkOrderKind, WorkOrderPriority, WorkOrderStatus
from tests.agent.experience.voc_world import add_conversation
from tests.agent.world import ACCOUNT_A, ACCOUNT_B, World
from tools.models import HandoffRequest, HandoffStatus

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def _order(no: str, kind: WorkOrderKind, status: WorkOrderStatus, created: datetime, **extra) -> WorkOrder:
    return WorkOrder(no=no, kind=kind, account_no=ACCOUNT_A, status=status, priority=WorkOrderPriority.HIGH,
                     title="投诉：抄表员态度差，回电13800138000", description="", channel="web",
                     sla_due_at=created + timedelta(hours=24), created_at=created, **extra)


def _seed(world: World) -> None:
    with world.sessions.begin() as session:
        session.add_all([
            _order("WO202611170001", WorkOrderKind.COMPLAINT, WorkOrderStatus.OPEN, NOW - timedelta(days=3)),
            _order("WO202611190001", WorkOrderKind.DISPUTE, WorkOrderStatus.IN_PROGRESS, NOW - timedelta(days=2),
                   payload={"answer_due_at": (NOW + timedelta(days=3)).isoformat()}),
            _order("WO202611100001", WorkOrderKind.COMPLAINT, WorkOrderStatus.RESOLVED, NOW - timedelta(days=10),
                   resolved_at=NOW - timedelta(days=8)),
            _order("WO202611200009", WorkOrderKind.REVIEW, WorkOrderStatus.OPEN, NOW - timedelta(days=3)),
            HandoffRequest(no="HO202611200001", conversation_id="c-ho-1", channel="wechat", account_no=ACCOUNT_B,
                           reason="customer_asked", summary="林美玲要求转人工", status=HandoffStatus.WAITING,
                           created_at=NOW - timedelta(minutes=30), payload={}),
            HandoffRequest(no="HO202611200002", conversation_id="c-ho-2", channel="web", account_no=None,
                           reason="customer_asked", summary="转人工", status=HandoffStatus.WAITING,
                           created_at=NOW - timedelta(minutes=3), payload={}),
        ])
        add_conversation(session, "c-abandoned", started_at=NOW - timedelta(days=2), texts=["查电费"],
                         account_no=ACCOUNT_A, outcome=Outcome.ABANDONED, topic="bill_amount")
        add_conversation(session, "c-abandoned-then-settled", started_at=NOW - timedelta(days=2), texts=["怎么缴费"],
                         account_no=ACCOUNT_B, outcome=Outcome.ABANDONED, topic="payment_channels")
        add_conversation(session, "c-settled", started_at=NOW - timedelta(days=1), texts=["怎么缴费"],
                         account_no=ACCOUNT_B, outcome=Outcome.RESOLVED, topic="payment_channels")
        add_conversation(session, "c-ho-1", started_at=NOW - timedelta(minutes=31), texts=["转人工"],
                         account_no=ACCOUNT_B, outcome=Outcome.ABANDONED, topic="bill_amount")


def test_each_kind_with_its_deadline_state_and_overdue_flag(world: World) -> None:
    _seed(world)
    with world.sessions() as session:
        rows = {n.reference: n for n in needs(session, NOW)}
    assert set(rows) == {"WO202611170001", "WO202611190001", "HO202611200001", "HO202611200002", "c-abandoned"}
    complaint = rows["WO202611170001"]
    assert complaint.overdue and complaint.state == "待处理" and complaint.due_at == NOW - timedelta(days=2)
    dispute = rows["WO202611190001"]
    assert not dispute.overdue and dispute.state == "处理中" and dispute.due_at == NOW + timedelta(days=3)
    assert rows["HO202611200001"].overdue and rows["HO202611200001"].state == "等待接入"
    assert rows["HO202611200001"].summary == "林**要求转人工"
    assert not rows["HO202611200002"].overdue  # 3 minutes: inside the 10 of remedies.yaml
    question = rows["c-abandoned"]
    assert question.kind == "open_question" and question.overdue and question.due_at == NOW - timedelta(days=1)
    assert all(n.account in ("4401****0001", "4401****0002", "—") for n in rows.values())
    assert "13800138000" not in complaint.summary and "138****8000" in complaint.summary


def test_closed_ones_only_with_all_and_late_closure_flagged(world: World) -> None:
    _seed(world)
    with world.sessions() as session:
        rows = {n.reference: n for n in needs(session, NOW, include_closed=True)}
    resolved = rows["WO202611100001"]
    assert resolved.closed and resolved.overdue and resolved.state == "已办结（超期办结）"


def test_cli_overdue_lists_only_overdue_and_masks(world: World, monkeypatch) -> None:
    _seed(world)
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    result = CliRunner().invoke(app, ["needs", "--overdue", "--at", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    assert "共 3 项，其中超期 3 项" in result.output
    assert "WO202611170001" in result.output and "WO202611190001" not in result.output
    for secret in (ACCOUNT_A, ACCOUNT_B, "13800138000", "林美玲"):
        assert secret not in result.output
    assert CliRunner().invoke(app, ["needs", "--at", "yesterday"]).exit_code == 2
