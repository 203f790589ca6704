"""Agent assist: the staff console's API (live and recent conversations, transcript, suggested
replies with their sources, take-over and hand-back, the customer card — open tickets, last
bills, classes and tags, an identity lock-out — the identity lock-outs in force (and lifting one
once the customer proved who they are to a person) and the open operations alerts).

Everything here sits behind `require_staff`: customers never reach it, whatever they send.
Take-over marks the conversation as held by a person (the hand-off request is accepted and the
dialogue state flagged), so the channels stop letting the bot answer until it is handed back.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from billing_core.db.engine import session_scope, utc_now
from billing_core.db.models import Bill, BillStatus, Customer, WorkOrder, WorkOrderKind, WorkOrderStatus
from channels.deps import Services, ServicesDep, StaffDep
from channels.models import OpsAlert
from channels.responses import CONFLICT, NOT_FOUND, STAFF_ONLY, TOO_LARGE
from channels.registry import push_to_customer
from channels.transcripts import ConversationSummary, Transcript, load_transcript, recent_conversations
from agent.agent import ConversationNotFound
from agent.experience.classes import ClassInputError, clear_staff_class, set_staff_class
from agent.experience.view import CustomerExperience, customer_experience
from tools.channels import channel_spec
from tools.identity_locks import (LIFT_REASON_MAX, IdentityLockView, LiftInputError, LockAlreadyEnded, LockLifted,
                                  LockNotFound, StaffPrincipal, account_identity_lock, active_identity_locks,
                                  lift_identity_lock)
from tools.models import HandoffRequest, HandoffStatus, LockScope
from tools.transfer_to_human import held_by_staff
from tools.verify_identity import mask_name

router = APIRouter(prefix="/api/assist", tags=["坐席辅助"], responses={**STAFF_ONLY, **NOT_FOUND, **TOO_LARGE})

ConversationId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{4,128}$", description="会话编号")]
AccountNo = Annotated[str, Path(pattern=r"^\d{6,12}$", description="户号")]


class HandoffOut(BaseModel):
    no: str
    conversation_id: str
    channel: str
    reason: str
    summary: str
    status: str
    created_at: datetime


class ConversationDetail(BaseModel):
    transcript: Transcript | None
    verified_account: str | None
    awaiting: str | None
    held_by_staff: bool
    handoffs: list[HandoffOut]


class SuggestionOut(BaseModel):
    text: str
    why: str
    tool_results: list[dict[str, Any]] = []
    passages: list[dict[str, Any]] = []


class TakeoverIn(BaseModel):
    note: str = Field(default="坐席主动接管", max_length=500, description="接管说明")


class TakeoverOut(BaseModel):
    conversation_id: str
    held_by_staff: bool
    handoff_no: str | None
    staff: str


class BillAtGlance(BaseModel):
    period: str
    amount: Decimal
    total_kwh: Decimal
    status: str
    due_date: date | None
    bill_no: str | None


class CustomerBills(BaseModel):
    account_no: str
    name: str
    category: str
    bills: list[BillAtGlance]
    identity_lock: IdentityLockView | None = Field(
        default=None, description="该户号正在生效的身份核实锁定（在线核实暂停，需人工核实身份）")


class Queue(BaseModel):
    waiting_handoffs: list[HandoffOut]
    conversations: list[ConversationSummary]


def _handoffs(conversation_id: str | None = None, waiting_only: bool = False) -> list[HandoffOut]:
    with session_scope() as session:
        query = select(HandoffRequest).order_by(HandoffRequest.created_at.desc()).limit(100)
        if conversation_id is not None:
            query = query.where(HandoffRequest.conversation_id == conversation_id)
        if waiting_only:
            query = query.where(HandoffRequest.status == HandoffStatus.WAITING)
        return [HandoffOut(no=h.no, conversation_id=h.conversation_id, channel=h.channel, reason=h.reason,
                           summary=h.summary, status=str(h.status), created_at=h.created_at)
                for h in session.scalars(query)]


@router.get("/queue", response_model=Queue, summary="待接入的转人工请求与最近会话")
def queue(_staff: StaffDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
          channel: Annotated[str | None, Query(pattern=r"^[a-z]{2,16}$")] = None) -> Queue:
    return Queue(waiting_handoffs=_handoffs(waiting_only=True),
                 conversations=recent_conversations(limit=limit, channel=channel))


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail, summary="会话详情与记录")
def conversation(conversation_id: ConversationId, services: ServicesDep,
                 _staff: StaffDep) -> ConversationDetail:
    transcript = load_transcript(conversation_id)
    state = services.agent.state(conversation_id)
    if transcript is None and state is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="conversation_id: 会话不存在")
    return ConversationDetail(
        transcript=transcript,
        verified_account=state.account_no if state is not None and state.verified else None,
        awaiting=state.awaiting if state is not None else None,
        held_by_staff=bool(state is not None and state.handed_off and _held(conversation_id)),
        handoffs=_handoffs(conversation_id),
    )


def _held(conversation_id: str) -> bool:
    with session_scope() as session:
        return held_by_staff(session, conversation_id)


def _suggestions(services: Services, conversation_id: str) -> list[SuggestionOut]:
    from agent.assist import suggest_replies
    from tools.context import ToolContext

    agent: Any = services.agent
    state = agent.state(conversation_id)
    if state is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="conversation_id: 没有进行中的会话状态")
    key = channel_spec(state.channel).identity_key
    identity = state.channel_identity.get(key) if key else None
    ctx = ToolContext(conversation_id=conversation_id, channel=state.channel, session_factory=agent.sessions,
                      channel_identity=identity, clock=agent.clock, knowledge=agent.knowledge)
    ctx.restore_principal()
    return [SuggestionOut(text=s.text, why=s.why, tool_results=s.tool_results, passages=s.passages)
            for s in suggest_replies(state, ctx)]


@router.get("/conversations/{conversation_id}/suggestions", response_model=list[SuggestionOut],
            summary="建议回复（附工具结果与知识来源）")
async def suggestions(conversation_id: ConversationId, services: ServicesDep,
                      _staff: StaffDep) -> list[SuggestionOut]:
    return await run_in_threadpool(_suggestions, services, conversation_id)


def _set_held(services: Services, conversation_id: str, held: bool, note: str) -> str | None:
    agent: Any = services.agent
    with agent.store.lock(conversation_id):
        state = agent.state(conversation_id)
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="conversation_id: 没有进行中的会话")
        with session_scope() as session:
            open_requests = list(session.scalars(select(HandoffRequest).where(
                HandoffRequest.conversation_id == conversation_id,
                HandoffRequest.status.in_([HandoffStatus.WAITING, HandoffStatus.ACCEPTED]))))
            number = None
            if held:
                if not open_requests:
                    from tools.context import ToolContext
                    from tools.transfer_to_human import HandoffReason, create_handoff

                    ctx = ToolContext(conversation_id=conversation_id, channel=state.channel,
                                      session_factory=agent.sessions)
                    ctx.restore_principal()
                    request = create_handoff(session, ctx, HandoffReason.CUSTOMER_ASKED, note)
                    request.reason = "staff_takeover"  # staff stepped in; the customer did not ask
                    open_requests = [request]
                for request in open_requests:
                    request.status = HandoffStatus.ACCEPTED
                    number = request.no
            else:
                for request in open_requests:
                    request.status = HandoffStatus.CLOSED
                    request.payload = {**(request.payload or {}), "handed_back_at": utc_now().isoformat()}
        state.handed_off = held
        agent.store.save(state)
    return number


@router.post("/conversations/{conversation_id}/takeover", response_model=TakeoverOut, summary="人工接管")
async def takeover(conversation_id: ConversationId, body: TakeoverIn, services: ServicesDep,
                   staff: StaffDep) -> TakeoverOut:
    number = await run_in_threadpool(_set_held, services, conversation_id, True, body.note)
    return TakeoverOut(conversation_id=conversation_id, held_by_staff=True, handoff_no=number, staff=staff)


@router.post("/conversations/{conversation_id}/handback", response_model=TakeoverOut, summary="交还智能客服")
async def handback(conversation_id: ConversationId, services: ServicesDep, staff: StaffDep) -> TakeoverOut:
    await run_in_threadpool(_set_held, services, conversation_id, False, "")
    return TakeoverOut(conversation_id=conversation_id, held_by_staff=False, handoff_no=None, staff=staff)


def _customer(session: Session, account_no: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.account_no == account_no))
    if customer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="account_no: 户号不存在")
    return customer


def _recent_bills(session: Session, customer: Customer, limit: int) -> list[Bill]:
    return list(session.scalars(select(Bill).where(Bill.customer_id == customer.id)
                                .order_by(Bill.period.desc()).limit(limit)))


@router.get("/customers/{account_no}/bills", response_model=CustomerBills, summary="客户近期账单一览")
def customer_bills(account_no: AccountNo, _staff: StaffDep,
                   limit: Annotated[int, Query(ge=1, le=36)] = 12) -> CustomerBills:
    with session_scope() as session:
        customer = _customer(session, account_no)
        bills = _recent_bills(session, customer, limit)
        return CustomerBills(
            account_no=customer.account_no, name=mask_name(customer.name), category=str(customer.category),
            bills=[BillAtGlance(period=b.period, amount=b.amount, total_kwh=b.total_kwh, status=str(b.status),
                                due_date=b.due_date, bill_no=b.bill_no) for b in bills],
            identity_lock=account_identity_lock(session, customer.account_no, utc_now()),
        )


class TicketAtGlance(BaseModel):
    no: str
    kind: str
    kind_label: str
    title: str
    status: str
    period: str | None
    created_at: datetime
    sla_due_at: datetime | None
    queue: str | None = Field(default=None, description="客户分类指定的处理队列（如客户经理·重要客户专席）")


class CustomerCard(BaseModel):
    """Who the staff member is talking to. `classes` (staff-set 重要客户 level and the derived classes)
    and `tags` are the names and labels of agent/experience; `experience` holds them in full, each tag
    with the records that made it, and the portrait cluster."""

    account_no: str
    name: str
    category: str
    category_label: str
    address: str
    withholding_agreement: bool
    classes: list[str] = []
    tags: list[str] = []
    portrait: str | None = Field(default=None, description="客户画像（所属分群的描述）")
    experience: CustomerExperience | None = None
    open_tickets: list[TicketAtGlance]
    bills: list[BillAtGlance]
    unpaid_bills: int
    unpaid_amount: Decimal
    identity_lock: IdentityLockView | None = Field(
        default=None, description="该户号正在生效的身份核实锁定（猜测尾号等），无则为空")


_CATEGORY_LABELS = {"residential": "居民生活用电", "ci_single": "工商业单一制", "ci_two_part": "工商业两部制",
                    "agricultural": "农业生产用电"}
_KIND_LABELS = {WorkOrderKind.DISPUTE: "电费争议", WorkOrderKind.COMPLAINT: "投诉", WorkOrderKind.REVIEW: "电费复核",
                WorkOrderKind.REFUND: "退费", WorkOrderKind.RECONCILIATION: "对账异常",
                WorkOrderKind.DUNNING_CALL: "催费外呼", WorkOrderKind.METER_CHECK: "表计核查"}
_UNPAID = (BillStatus.ISSUED, BillStatus.PARTIALLY_PAID)


def _mask_address(address: str) -> str:
    """Enough to recognise the place (district and street), not the door number."""
    return address[:9] + "…" if len(address) > 9 else address


@router.get("/customers/{account_no}/card", response_model=CustomerCard, summary="客户卡片（工单、账单、分类标签）")
def customer_card(account_no: AccountNo, _staff: StaffDep,
                  bills: Annotated[int, Query(ge=1, le=24)] = 6) -> CustomerCard:
    with session_scope() as session:
        customer = _customer(session, account_no)
        recent = _recent_bills(session, customer, bills)
        unpaid = list(session.scalars(select(Bill).where(Bill.customer_id == customer.id, Bill.status.in_(_UNPAID))))
        tickets = list(session.scalars(
            select(WorkOrder).where(WorkOrder.account_no == account_no,
                                    WorkOrder.status.in_([WorkOrderStatus.OPEN, WorkOrderStatus.IN_PROGRESS]))
            .order_by(WorkOrder.created_at.desc()).limit(20)))
        category = str(customer.category)
        experience = customer_experience(session, customer.account_no)
        return CustomerCard(
            account_no=customer.account_no, name=mask_name(customer.name), category=category, category_label=_CATEGORY_LABELS.get(category, category),
            address=_mask_address(customer.address), withholding_agreement=bool(customer.withholding_agreement),
            classes=[c.name for c in experience.classes] if experience else [],
            tags=[t.label for t in experience.tags] if experience else [],
            portrait=experience.portrait.label if experience and experience.portrait else None,
            experience=experience,
            open_tickets=[TicketAtGlance(no=t.no, kind=str(t.kind), kind_label=_KIND_LABELS.get(t.kind, str(t.kind)),
                                         title=t.title, status=str(t.status), period=t.period,
                                         created_at=t.created_at, sla_due_at=t.sla_due_at,
                                         queue=(t.payload or {}).get("queue")) for t in tickets],
            bills=[BillAtGlance(period=b.period, amount=b.amount, total_kwh=b.total_kwh, status=str(b.status),
                                due_date=b.due_date, bill_no=b.bill_no) for b in recent],
            unpaid_bills=len(unpaid), unpaid_amount=sum((b.amount for b in unpaid), Decimal("0.00")),
            identity_lock=account_identity_lock(session, customer.account_no, utc_now()),
        )


class StaffClassIn(BaseModel):
    class_code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$", description="vip_special / vip_1 / vip_2")
    reason: str = Field(min_length=4, max_length=500, description="认定理由")


class ClassClearIn(BaseModel):
    reason: str = Field(min_length=4, max_length=500, description="取消理由")


def _change_class(account_no: str, staff: str, class_code: str | None, reason: str) -> CustomerExperience:
    with session_scope() as session:
        _customer(session, account_no)
        try:
            if class_code is None:
                clear_staff_class(session, account_no, reason, staff, channel="staff_console")
            else:
                set_staff_class(session, account_no, class_code, reason, staff, channel="staff_console")
        except ClassInputError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
        view = customer_experience(session, account_no)
        assert view is not None
        return view


@router.put("/customers/{account_no}/class", response_model=CustomerExperience,
            summary="设置重要客户等级（表1 高可靠性客户；需理由，留审计记录）")
def set_customer_class(account_no: AccountNo, body: StaffClassIn, staff: StaffDep) -> CustomerExperience:
    return _change_class(account_no, staff, body.class_code, body.reason)


@router.delete("/customers/{account_no}/class", response_model=CustomerExperience,
               summary="取消重要客户等级（需理由，留审计记录）")
def clear_customer_class(account_no: AccountNo, body: ClassClearIn, staff: StaffDep) -> CustomerExperience:
    return _change_class(account_no, staff, None, body.reason)


class AlertOut(BaseModel):
    rule: str
    severity: str
    message: str
    value: str | None
    threshold: str
    first_seen_at: datetime
    last_seen_at: datetime


@router.get("/alerts", response_model=list[AlertOut], summary="未解除的运营告警（channels/ops_policy.yaml）")
def open_alerts(_staff: StaffDep) -> list[AlertOut]:
    with session_scope() as session:
        rows = session.scalars(select(OpsAlert).where(OpsAlert.resolved_at.is_(None))
                               .order_by(OpsAlert.first_seen_at.desc()))
        alerts = [AlertOut(rule=a.rule, severity=a.severity, message=a.message, value=a.value,
                           threshold=a.threshold, first_seen_at=a.first_seen_at, last_seen_at=a.last_seen_at)
                  for a in rows]
    return sorted(alerts, key=lambda a: a.severity != "critical")


@router.get("/identity-locks", response_model=list[IdentityLockView], summary="正在生效的身份核实锁定")
def identity_locks(_staff: StaffDep,
                   scope: Annotated[LockScope | None, Query(description="account | conversation")] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[IdentityLockView]:
    """Every lock in force: the claimed 户号 (also ones that do not exist) or the conversation, why,
    until when, and from which channels the wrong answers came. Staff only."""
    with session_scope() as session:
        return active_identity_locks(session, utc_now(), scope=scope, limit=limit)


class LiftLockIn(BaseModel):
    reason: str = Field(min_length=1, max_length=LIFT_REASON_MAX,
                        description="解除原因：如何人工核实了客户身份（如营业厅核验户主身份证件）")


@router.post("/identity-locks/{lock_id}/lift", response_model=LockLifted, responses=CONFLICT,
             summary="解除身份核实锁定（客户已经人工核实身份；需理由，留审计记录）")
def lift_lock(lock_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="锁定编号（列表中的 id）")],
              body: LiftLockIn, staff: StaffDep) -> LockLifted:
    """End a lock now. The wrong answers stay on record; those before the lift stop counting, so
    the customer can verify online again (a later lock of the 户号 still lasts twice as long)."""
    with session_scope() as session:
        try:
            return lift_identity_lock(session, StaffPrincipal(staff), lock_id, body.reason, utc_now())
        except LockNotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
        except LockAlreadyEnded as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
        except LiftInputError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc


class StaffMessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=1000, description="坐席发给客户的文字")


class StaffMessageOut(BaseModel):
    conversation_id: str
    recorded: bool


@router.post("/conversations/{conversation_id}/messages", response_model=StaffMessageOut, summary="坐席回复客户",
             responses=CONFLICT)
async def staff_message(conversation_id: ConversationId, body: StaffMessageIn, services: ServicesDep,
                        _staff: StaffDep) -> StaffMessageOut:
    if not await run_in_threadpool(_held, conversation_id):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="conversation_id: 请先接管会话再回复")
    agent: Any = services.agent
    try:
        await run_in_threadpool(agent.record_held_turn, conversation_id, "", body.text)
    except ConversationNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="conversation_id: 没有进行中的会话") from exc
    # Channels that can reach a customer unasked (WeChat's customer-service API …) get it pushed;
    # the web page reads it from the transcript.
    await push_to_customer(services, agent.state(conversation_id), body.text)
    return StaffMessageOut(conversation_id=conversation_id, recorded=True)
