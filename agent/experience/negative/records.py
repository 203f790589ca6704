"""Opening, updating and answering 负面体验 records, and finding the experiences the records show.

One record per conversation: a second cause in the same conversation (an angry customer who then
rates 1) is added to it, so the weekly report counts experiences, not symptoms, while still
listing every cause. The evidence kept is masked (no phone or ID number in full).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.experience.negative.models import NegativeExperience, RemedyStatus
from agent.experience.negative.policy import RemedyPolicy, remedy_policy
from agent.grounding import mask_personal_numbers
from agent.models import ConversationRecord
from agent.records import fcr_window_days
from tools.models import HandoffRequest, HandoffStatus

DETAIL_CHARS = 200


@dataclass(frozen=True)
class Trigger:
    """One sign of a negative experience: its cause (remedies.yaml `causes`) and what showed it."""

    cause: str
    detail: str = ""
    complaint_category: str | None = None


def record_trigger(session: Session, *, conversation_id: str, channel: str, account_no: str | None,
                   trigger: Trigger, now: datetime, policy: RemedyPolicy | None = None) -> NegativeExperience:
    """Open the conversation's record with this cause, or add the cause to the open one (flushed)."""
    policy = policy or remedy_policy()
    row = session.scalar(select(NegativeExperience).where(NegativeExperience.conversation_id == conversation_id))
    entry = {"cause": trigger.cause, "at": now.isoformat(),
             "detail": mask_personal_numbers(trigger.detail)[:DETAIL_CHARS]}
    if row is None:
        row = NegativeExperience(conversation_id=conversation_id, channel=channel, account_no=account_no,
                                 cause=trigger.cause, causes=[trigger.cause], evidence=[entry],
                                 remedy=policy.remedy_for(trigger.cause, trigger.complaint_category),
                                 opened_at=now, updated_at=now)
        session.add(row)
    else:
        row.causes = list(dict.fromkeys([*row.causes, trigger.cause]))
        row.evidence = [*row.evidence, entry]
        row.account_no = row.account_no or account_no
        row.updated_at = now
        if row.remedy_status in (None, RemedyStatus.DECLINED.value):
            row.remedy = policy.remedy_for(trigger.cause, trigger.complaint_category)
    session.flush()
    return row


def set_remedy(session: Session, conversation_id: str, remedy: str, status: RemedyStatus, now: datetime,
               policy: RemedyPolicy | None = None) -> NegativeExperience | None:
    """The remedy offered (or given, or answered) in a conversation; a promised time is set on yes."""
    policy = policy or remedy_policy()
    row = session.scalar(select(NegativeExperience).where(NegativeExperience.conversation_id == conversation_id))
    if row is None:
        return None
    row.remedy, row.remedy_status, row.updated_at = remedy, status.value, now
    if status in (RemedyStatus.ACCEPTED, RemedyStatus.DECLINED, RemedyStatus.APPLIED):
        row.remedy_answered_at = now
    hours = policy.remedies[remedy].within_hours
    if status in (RemedyStatus.ACCEPTED, RemedyStatus.PENDING, RemedyStatus.APPLIED) and hours:
        row.remedy_due_at = now + timedelta(hours=hours)
    session.flush()
    return row


def earlier_contact(session: Session, account_no: str, topic: str, conversation_id: str, now: datetime,
                    window_days: int | None = None) -> ConversationRecord | None:
    """The latest other conversation of this customer about `topic` within the FCR window
    (`agent.records.first_contact_resolution`'s repeat contact), or None. No upper bound: records are
    stamped by the wall clock, which may run ahead of an agent's (a test's or a scenario's) clock."""
    window = timedelta(days=fcr_window_days() if window_days is None else window_days)
    return session.scalar(
        select(ConversationRecord).where(
            ConversationRecord.account_no == account_no, ConversationRecord.topic == topic,
            ConversationRecord.conversation_id != conversation_id,
            ConversationRecord.started_at >= now - window)
        .order_by(ConversationRecord.started_at.desc()).limit(1))


def unanswered_handoffs(session: Session, now: datetime, *, account_no: str | None = None,
                        conversation_id: str | None = None, policy: RemedyPolicy | None = None,
                        window_days: int | None = None) -> list[HandoffRequest]:
    """Hand-offs still waiting `handoff_unanswered_minutes` after they were asked for (nobody took
    them), created within the FCR window; optionally of one customer or one conversation."""
    policy = policy or remedy_policy()
    window = timedelta(days=fcr_window_days() if window_days is None else window_days)
    query = select(HandoffRequest).where(
        HandoffRequest.status == HandoffStatus.WAITING,
        HandoffRequest.created_at <= now - timedelta(minutes=policy.handoff_unanswered_minutes),
        HandoffRequest.created_at >= now - window)
    if account_no is not None:
        query = query.where(HandoffRequest.account_no == account_no)
    if conversation_id is not None:
        query = query.where(HandoffRequest.conversation_id == conversation_id)
    return list(session.scalars(query.order_by(HandoffRequest.created_at)))


def scan_records(session: Session, now: datetime, policy: RemedyPolicy | None = None) -> list[NegativeExperience]:
    """The negative experiences the records show without a conversation turn to catch them: hand-offs
    nobody took, and CSAT 1–2 given outside the dialogue. Each gets its record (remedy `pending`,
    for staff to offer); conversations that already have the cause are skipped. Flushed, not committed."""
    policy = policy or remedy_policy()
    found: list[NegativeExperience] = []
    known = {(row.conversation_id, cause) for row in session.scalars(select(NegativeExperience))
             for cause in row.causes}
    for request in unanswered_handoffs(session, now, policy=policy):
        if (request.conversation_id, "handoff_unanswered") in known:
            continue
        waited = int((now - request.created_at).total_seconds() // 60)
        found.append(_pending(session, request.conversation_id, request.channel, request.account_no,
                              Trigger("handoff_unanswered", f"转接单{request.no}已等待{waited}分钟"), now, policy))
    since = now - timedelta(days=fcr_window_days())
    low = session.scalars(select(ConversationRecord).where(
        ConversationRecord.csat_score.is_not(None), ConversationRecord.csat_score <= 2,
        ConversationRecord.csat_at >= since))
    for record in low:
        if (record.conversation_id, "low_csat") in known:
            continue
        found.append(_pending(session, record.conversation_id, record.channel, record.account_no,
                              Trigger("low_csat", f"满意度{record.csat_score}分"), now, policy))
    return found


def _pending(session: Session, conversation_id: str, channel: str, account_no: str | None, trigger: Trigger,
             now: datetime, policy: RemedyPolicy) -> NegativeExperience:
    row = record_trigger(session, conversation_id=conversation_id, channel=channel, account_no=account_no,
                         trigger=trigger, now=now, policy=policy)
    if row.remedy_status is None:
        set_remedy(session, conversation_id, row.remedy or policy.remedy_for(trigger.cause), RemedyStatus.PENDING,
                   now, policy)
    return row
