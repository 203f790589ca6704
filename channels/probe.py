"""The availability probe: the chat path exercised end to end over HTTP, recorded as up/down intervals.

One check is what a customer does: start a web conversation (`POST /api/chat/conversations`,
which issues the conversation token), send 「你好」 with that token and read a non-empty reply
within the timeout. Anything else (refused connection, an HTTP error, a timeout, an empty reply)
is a fault. Consecutive checks with the same outcome extend one interval; a changed outcome
opens a new one that starts where the last check left off, so continuously probed time is
covered without gaps. A gap longer than `max_gap` (the probe itself was stopped) is left out:
unmonitored time is neither service time nor fault time.

The probe's own conversations are removed from the agent's records after each check, so the
customer KPIs (FCR, response time, CSAT) never count a robot saying hello.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import utc_now
from channels.models import AvailabilityInterval

log = logging.getLogger("powerdesk.channels")

PROBE_TEXT = "你好"
DEFAULT_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: int
    error: str | None
    conversation_id: str | None
    checked_at: datetime


def check_chat(base_url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS,
               client: httpx.Client | None = None) -> CheckResult:
    """One end-to-end check of the web chat at `base_url` (or through `client`, e.g. a test client)."""
    started = time.perf_counter()
    conversation_id: str | None = None
    error: str | None = None
    opened = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout) if client is None else nullcontext(client)
    try:
        with opened as client:
            created = client.post("/api/chat/conversations")
            if created.status_code != 201:
                raise ProbeFault(f"开始会话返回 HTTP {created.status_code}")
            body = created.json()
            conversation_id = body["conversation_id"]
            headers = {"X-Conversation-Token": body.get("conversation_token", "")}
            reply = client.post(f"/api/chat/conversations/{conversation_id}/messages", params={"stream": "false"},
                                json={"text": PROBE_TEXT, "message_id": "probe-" + uuid.uuid4().hex[:16]},
                                headers=headers)
            if reply.status_code != 200:
                raise ProbeFault(f"发送消息返回 HTTP {reply.status_code}")
            if not str(reply.json().get("text", "")).strip():
                raise ProbeFault("回复为空")
    except ProbeFault as exc:
        error = str(exc)
    except httpx.TimeoutException:
        error = f"超时（>{timeout:g} 秒）"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    latency = int((time.perf_counter() - started) * 1000)
    return CheckResult(ok=error is None, latency_ms=latency, error=error, conversation_id=conversation_id,
                       checked_at=utc_now())


class ProbeFault(Exception):
    """The service answered, but not as a working chat path would."""


def record_check(session: Session, target: str, result: CheckResult, max_gap: timedelta) -> AvailabilityInterval:
    """Extend the target's latest interval or open a new one; returns the interval now current."""
    status = "up" if result.ok else "down"
    latest = session.scalar(select(AvailabilityInterval).where(AvailabilityInterval.target == target)
                            .order_by(AvailabilityInterval.ended_at.desc(), AvailabilityInterval.id.desc())
                            .limit(1).with_for_update())
    at = result.checked_at
    contiguous = latest is not None and timedelta(0) <= at - latest.ended_at <= max_gap
    if latest is not None and contiguous and latest.status == status:
        latest.ended_at = at
        latest.checks += 1
        latest.last_latency_ms = result.latency_ms
        if result.error:
            latest.last_error = result.error
        return latest
    interval = AvailabilityInterval(
        target=target, status=status, started_at=latest.ended_at if latest is not None and contiguous else at,
        ended_at=at, checks=1, last_error=result.error, last_latency_ms=result.latency_ms)
    session.add(interval)
    session.flush()
    if latest is not None and latest.status != status:
        log.warning("chat path %s", status, extra={"target": target, "error": result.error})
    return interval


def forget_probe_conversation(session: Session, conversation_id: str | None) -> None:
    """Remove the probe's conversation from the agent's records (it is not a customer's)."""
    if not conversation_id:
        return
    record_ids = select(ConversationRecord.id).where(ConversationRecord.conversation_id == conversation_id)
    session.execute(delete(TurnRecord).where(TurnRecord.conversation_pk.in_(record_ids)))
    session.execute(delete(ConversationRecord).where(ConversationRecord.conversation_id == conversation_id))


@dataclass(frozen=True)
class Availability:
    """Fault time and service time (seconds) of the probed chat path over a time range."""

    fault_seconds: float
    service_seconds: float
    checks: int

    @property
    def unmonitored(self) -> bool:
        return self.service_seconds == 0


def availability(session: Session, start: datetime, end: datetime, target: str | None = None) -> Availability:
    """Intervals clipped to [start, end): 故障时长 is the `down` part, 服务时长 all probed time."""
    query = select(AvailabilityInterval).where(AvailabilityInterval.ended_at > start,
                                               AvailabilityInterval.started_at < end)
    if target is not None:
        query = query.where(AvailabilityInterval.target == target)
    fault = service = 0.0
    checks = 0
    for interval in session.scalars(query):
        lower, upper = max(interval.started_at, start), min(interval.ended_at, end)
        seconds = max((upper - lower).total_seconds(), 0.0)
        service += seconds
        checks += interval.checks
        if interval.status == "down":
            fault += seconds
    return Availability(fault_seconds=fault, service_seconds=service, checks=checks)


def probe_once(base_url: str, max_gap: timedelta, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> CheckResult:
    """Check, record, and forget the probe's conversation; the check's result."""
    from billing_core.db.engine import session_scope

    result = check_chat(base_url, timeout)
    with session_scope() as session:
        record_check(session, base_url.rstrip("/"), result, max_gap)
        forget_probe_conversation(session, result.conversation_id)
    log.info("probe", extra={"target": base_url, "ok": result.ok, "ms": result.latency_ms, "error": result.error})
    return result
