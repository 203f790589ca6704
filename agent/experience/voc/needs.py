"""The needs loop (guide §8.4 「客户诉求闭环」; T/CI 1281 §5.2c): every customer request that could not
be served at once, with its response deadline and its state, so none is forgotten.

Three kinds, each from its own records, each deadline from an existing policy file:
- 工单 (dispute and complaint work orders): the contact deadline the tool set (`sla_due_at`, from
  tools/service_policy.yaml), then the answer deadline in its payload once work has started;
- 转人工 (hand-offs): a person should take it within `handoff_unanswered_minutes` of
  agent/experience/negative/data/remedies.yaml (after that it is a negative experience);
- 未决问题 (a conversation with a task that ended abandoned, with no ticket, hand-off or later
  resolved contact about the same topic): a call-back within the complaint contact hours of
  tools/service_policy.yaml (受理后24小时内联系).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.experience.negative.policy import remedy_policy
from agent.experience.negative.report import mask_account
from agent.experience.voc.periods import ZONE, aware, customer_names, mask_text
from agent.models import ConversationRecord, Outcome
from billing_core.db.models import WorkOrder, WorkOrderKind, WorkOrderStatus
from tools.models import HandoffRequest, HandoffStatus
from tools.service_policy import load_policy

KIND_CN = {"work_order": "工单", "handoff": "转人工", "open_question": "未决问题"}
LOOKBACK_DAYS = 90  # open questions and hand-offs older than this are history, not a live need
_DONE_ORDERS = (WorkOrderStatus.RESOLVED, WorkOrderStatus.CLOSED)


@dataclass(frozen=True)
class Need:
    kind: str  # work_order / handoff / open_question
    reference: str  # work-order no, hand-off no, conversation id
    channel: str
    account: str  # masked
    opened_at: datetime
    due_at: datetime
    state: str  # 待处理 / 处理中 / 等待接入 / 已接入 / 待回访 / 已办结
    closed: bool
    overdue: bool
    summary: str  # masked


def _order_need(order: WorkOrder, now: datetime, names: set[str]) -> Need:
    opened = aware(order.created_at)
    contact_due = aware(order.sla_due_at) if order.sla_due_at else opened + timedelta(hours=load_policy().complaint.contact_hours)
    answer_due = order.payload.get("answer_due_at") if order.payload else None
    closed = order.status in _DONE_ORDERS
    if order.status == WorkOrderStatus.IN_PROGRESS and answer_due:
        due, state = aware(datetime.fromisoformat(answer_due)), "处理中"
    else:
        due, state = contact_due, "已办结" if closed else "待处理"
    finished = aware(order.resolved_at) if order.resolved_at else None
    overdue = (finished > due) if closed and finished else (not closed and now > due)
    kind = getattr(order.kind, "value", order.kind)
    return Need("work_order", order.no, order.channel or "—", mask_account(order.account_no) if order.account_no else "—",
                opened, due, state + ("（超期办结）" if closed and overdue else ""), closed, overdue,
                mask_text(f"{'电费异议' if kind == 'dispute' else '投诉'}：{order.title}", names)[:60])


def _handoff_need(request: HandoffRequest, now: datetime, minutes: int, names: set[str]) -> Need:
    opened = aware(request.created_at)
    due = opened + timedelta(minutes=minutes)
    status = HandoffStatus(request.status)
    waiting = status == HandoffStatus.WAITING
    state = {HandoffStatus.WAITING: "等待接入", HandoffStatus.ACCEPTED: "已接入", HandoffStatus.CLOSED: "已办结"}[status]
    return Need("handoff", request.no, request.channel, mask_account(request.account_no) if request.account_no else "—",
                opened, due, state, status == HandoffStatus.CLOSED, waiting and now > due,
                mask_text(request.summary or request.reason, names)[:60])


def needs(session: Session, now: datetime | None = None, *, include_closed: bool = False) -> list[Need]:
    """Every need of the last LOOKBACK_DAYS, overdue first (then by deadline)."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=LOOKBACK_DAYS)
    found: list[Need] = []
    orders = select(WorkOrder).where(WorkOrder.kind.in_([WorkOrderKind.DISPUTE, WorkOrderKind.COMPLAINT]))
    if not include_closed:
        orders = orders.where(WorkOrder.status.not_in(_DONE_ORDERS))
    else:
        orders = orders.where(WorkOrder.created_at >= since)
    order_rows = list(session.scalars(orders))

    minutes = remedy_policy().handoff_unanswered_minutes
    handoffs = select(HandoffRequest).where(HandoffRequest.created_at >= since)
    if not include_closed:
        handoffs = handoffs.where(HandoffRequest.status != HandoffStatus.CLOSED)
    handoff_rows = list(session.scalars(handoffs))
    # A summary quotes the customer's words; their names are masked like their numbers.
    names = customer_names(session, [r.account_no for r in [*order_rows, *handoff_rows]])
    found += [_order_need(order, now, names) for order in order_rows]
    handed = set()
    for request in handoff_rows:
        handed.add(request.conversation_id)
        found.append(_handoff_need(request, now, minutes, names))

    found += _open_questions(session, now, since, handed)
    return sorted(found, key=lambda n: (not n.overdue, n.closed, n.due_at))


def _open_questions(session: Session, now: datetime, since: datetime, handed: set[str]) -> list[Need]:
    """Abandoned conversations about a task that nobody has taken up since."""
    hours = load_policy().complaint.contact_hours
    rows = list(session.scalars(select(ConversationRecord).where(
        ConversationRecord.started_at >= since, ConversationRecord.topic.is_not(None),
        ConversationRecord.outcome == Outcome.ABANDONED).order_by(ConversationRecord.started_at)))
    if not rows:
        return []
    later = {(r.account_no, r.topic, aware(r.started_at)) for r in session.scalars(select(ConversationRecord).where(
        ConversationRecord.started_at >= since, ConversationRecord.account_no.is_not(None),
        ConversationRecord.outcome.in_([Outcome.RESOLVED, Outcome.TICKET, Outcome.TRANSFERRED])))}
    found = []
    for row in rows:
        if row.conversation_id in handed or row.tickets:
            continue
        opened = aware(row.started_at)
        if row.account_no and any(a == row.account_no and t == row.topic and s > opened for a, t, s in later):
            continue  # the customer came back and it was settled
        due = opened + timedelta(hours=hours)
        found.append(Need("open_question", row.conversation_id[:32], row.channel,
                          mask_account(row.account_no) if row.account_no else "—", opened, due, "待回访", False,
                          now > due, f"未办结的咨询：{row.topic}"))
    return found


def format_needs(rows: list[Need], now: datetime) -> str:
    overdue = sum(1 for n in rows if n.overdue and not n.closed)
    lines = [f"诉求闭环：共 {len(rows)} 项，其中超期 {overdue} 项（截至 {now.astimezone(ZONE):%Y-%m-%d %H:%M}）",
             "超期\t类型\t编号\t渠道\t户号\t受理时间\t响应时限\t状态\t内容"]
    for n in rows:
        lines.append("\t".join(["⚠超期" if n.overdue else "", KIND_CN[n.kind], n.reference, n.channel, n.account,
                                f"{n.opened_at.astimezone(ZONE):%m-%d %H:%M}", f"{n.due_at.astimezone(ZONE):%m-%d %H:%M}",
                                n.state, n.summary]))
    return "\n".join(lines)
