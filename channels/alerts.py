"""Alerts as data: the rules of `channels/ops_policy.yaml` evaluated against the database.

`evaluate_alerts` works out which rules are breached now (each with the observed figure and the
threshold, as shown to staff); `sync_alerts` keeps `ops_alerts` in step: a new breach opens an
alert, a continuing one updates it, a rule no longer breached resolves its open alert. The staff
console lists the open alerts (`/api/assist/alerts`), and `/metrics` exports them as
`powerdesk_alert_open` for Prometheus (`docs/prometheus-alerts.yml`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.models import TurnRecord
from billing_core.db.engine import utc_now
from channels.kpi import LOCAL_ZONE, kpi_report
from channels.models import AvailabilityInterval, OpsAlert
from channels.ops_policy import AlertRule, OpsPolicy, load_policy
from channels.probe import availability

log = logging.getLogger("powerdesk.channels")


@dataclass(frozen=True)
class Breach:
    rule: AlertRule
    value: str
    threshold: str


def _fmt(value: Decimal, places: str = "0.01") -> str:
    return str(value.quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _p95_ms(session: Session, since: datetime) -> tuple[int, Decimal | None]:
    """Count and nearest-rank p95 of agent turn latencies since `since` (staff turns excluded)."""
    where = (TurnRecord.created_at >= since, TurnRecord.brain != "staff")
    count = session.scalar(select(func.count(TurnRecord.id)).where(*where)) or 0
    if count == 0:
        return 0, None
    rank = max(int(Decimal(count) * Decimal("0.95") + Decimal("0.999999")), 1)  # ceil(0.95 n)
    value = session.scalar(select(TurnRecord.latency_ms).where(*where).order_by(TurnRecord.latency_ms)
                           .offset(rank - 1).limit(1))
    return count, Decimal(value or 0)


def evaluate_alerts(session: Session, policy: OpsPolicy | None = None,
                    now: datetime | None = None) -> list[Breach]:
    """The rules breached at `now` (default: the current time)."""
    policy = policy or load_policy()
    now = now or utc_now()
    breaches: list[Breach] = []
    period = now.astimezone(LOCAL_ZONE).strftime("%Y-%m")
    report = None
    for rule in policy.alerts:
        if rule.kind == "kpi":
            report = report or kpi_report(session, period, now=now)
            target = policy.targets[rule.kpi or ""]
            figure = report.figure(rule.kpi or "", rule.channel)
            if figure is None or figure.value is None or figure.denominator < rule.min_denominator:
                continue
            if target.missed(figure.value):
                breaches.append(Breach(rule, f"{figure.value}{figure.unit}", f"{target.target}{figure.unit}"))
        elif rule.kind == "turn_latency_p95":
            count, p95 = _p95_ms(session, now - timedelta(minutes=rule.window_minutes))
            if p95 is not None and count >= rule.min_turns and rule.above is not None and p95 > rule.above:
                breaches.append(Breach(rule, f"{p95}ms", f"{rule.above}ms"))
        elif rule.kind == "chat_error_rate":
            seen = availability(session, now - timedelta(minutes=rule.window_minutes), now)
            if seen.unmonitored or rule.above is None:
                continue
            share = Decimal(str(seen.fault_seconds)) * 100 / Decimal(str(seen.service_seconds))
            if share > rule.above:
                breaches.append(Breach(rule, _fmt(share) + "%", f"{rule.above}%"))
        elif rule.kind == "probe_stale":
            last = session.scalar(select(func.max(AvailabilityInterval.ended_at)))
            if last is None or now - last > timedelta(minutes=rule.minutes):
                age = "从未探测" if last is None else f"{int((now - last).total_seconds() // 60)}分钟"
                breaches.append(Breach(rule, age, f"{rule.minutes}分钟"))
    return breaches


def sync_alerts(session: Session, breaches: list[Breach], policy: OpsPolicy | None = None,
                now: datetime | None = None) -> list[OpsAlert]:
    """Open, update and resolve `ops_alerts` rows to match `breaches`; the alerts open afterwards."""
    policy = policy or load_policy()
    now = now or utc_now()
    open_alerts = {a.rule: a for a in session.scalars(select(OpsAlert).where(OpsAlert.resolved_at.is_(None)))}
    breached = {b.rule.rule: b for b in breaches}
    for rule in policy.alerts:
        alert, breach = open_alerts.get(rule.rule), breached.get(rule.rule)
        if breach is not None and alert is None:
            alert = OpsAlert(rule=rule.rule, severity=rule.severity, message=rule.message, value=breach.value,
                             threshold=breach.threshold, first_seen_at=now, last_seen_at=now)
            session.add(alert)
            open_alerts[rule.rule] = alert
            log.warning("alert raised", extra={"rule": rule.rule, "value": breach.value,
                                               "threshold": breach.threshold})
        elif breach is not None and alert is not None:
            alert.value, alert.threshold, alert.last_seen_at = breach.value, breach.threshold, now
        elif breach is None and alert is not None:
            alert.resolved_at = now
            del open_alerts[rule.rule]
            log.info("alert resolved", extra={"rule": rule.rule})
    session.flush()
    return sorted(open_alerts.values(), key=lambda a: (a.severity != "critical", a.first_seen_at))


def run_alerts_once(now: datetime | None = None) -> list[OpsAlert]:
    from billing_core.db.engine import session_scope

    with session_scope() as session:
        alerts = sync_alerts(session, evaluate_alerts(session, now=now), now=now)
        session.expunge_all()
        return alerts
