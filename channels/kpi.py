"""The T/CI 1281—2025 table-1 report: billing KPIs from the billing core, service KPIs from the
agent's records, per period and channel, and 智能服务平台/系统故障率 from the availability probe.

Every figure carries its numerator and denominator so it can be checked by hand; a figure with
nothing to divide by is None (「无数据」), never a made-up 0 % or 100 %. First-contact resolution
of conversations whose repeat-contact window is still open is 「待定」 (pending), not a failure.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.models import ConversationRecord, TurnRecord
from agent.records import first_contact_resolution
from billing_core.operations.kpi_store import period_kpis
from billing_core.db.models import Bill
from channels import registry as _channel_registry  # noqa: F401 - every channel registers its spec
from channels.models import AvailabilityInterval
from channels.probe import availability
from tools.channels import reported_channels

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
# One column per customer-facing channel; channels.registry imports every channel module, so
# a channel that registers its own spec (Alipay) is listed too.
CHANNELS = tuple(spec.name for spec in reported_channels())
CHANNEL_NAMES = {"all": "全部渠道", **{spec.name: spec.label for spec in reported_channels()}}
SATISFIED_FROM = 4  # 1–5 scale: 4 满意, 5 非常满意
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PeriodError(ValueError):
    """A period that is not YYYY-MM."""


@dataclass(frozen=True)
class Figure:
    """One KPI value with what it was computed from."""

    code: str
    name: str
    value: Decimal | None
    unit: str  # "%", "秒", "分钟"
    numerator: Decimal
    denominator: Decimal
    numerator_label: str
    denominator_label: str
    pending: int = 0  # cases not yet decided (FCR: first contacts still inside the repeat-contact window)

    def shown(self) -> str:
        if self.value is None:
            return "待定" if self.pending else "无数据"
        return f"{self.value}{self.unit}" + (f"（另有{self.pending}项待定）" if self.pending else "")


@dataclass
class KpiReport:
    period: str
    billing: list[Figure] = field(default_factory=list)
    service: dict[str, list[Figure]] = field(default_factory=dict)  # channel ("all", "web", …) → figures
    platform: list[Figure] = field(default_factory=list)  # 智能服务平台/系统故障率

    def figure(self, code: str, channel: str = "all") -> Figure | None:
        """The figure `code` (a service figure of `channel`, else a billing or platform one)."""
        for f in [*self.service.get(channel, []), *self.billing, *self.platform]:
            if f.code == code:
                return f
        return None

    def as_dict(self) -> dict[str, object]:
        return {"period": self.period, "billing": [figure_dict(f) for f in self.billing],
                "platform": [figure_dict(f) for f in self.platform],
                "service": {ch: [figure_dict(f) for f in figs] for ch, figs in self.service.items()}}


def figure_dict(f: Figure) -> dict[str, object]:
    """A figure as JSON: Decimals as strings (exact), None as null."""
    return {k: (None if v is None else str(v)) if isinstance(v, Decimal) or v is None else v
            for k, v in asdict(f).items()}


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a YYYY-MM month in China time, as aware datetimes."""
    match = _PERIOD.match(period or "")
    if not match:
        raise PeriodError(f"period: 应为 YYYY-MM 格式（例如 2026-05），收到 {period!r}")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=LOCAL_ZONE)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=LOCAL_ZONE)
    return start, end


def _q(value: Decimal, places: str = "0.01") -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _ratio(numerator: Decimal, denominator: Decimal, scale: Decimal = Decimal(1)) -> Decimal | None:
    return None if denominator == 0 else _q(numerator * scale / denominator)


def service_figures(session: Session, period: str, channel: str | None = None,
                    now: datetime | None = None) -> list[Figure]:
    """客户响应平均时间, 问题处理平均时长, 一次性问题解决率, 智能服务满意度 for conversations started in the period."""
    start, end = period_bounds(period)
    now = now or datetime.now(UTC)
    conversations = select(ConversationRecord).where(
        ConversationRecord.started_at >= start, ConversationRecord.started_at < end)
    if channel:
        conversations = conversations.where(ConversationRecord.channel == channel)
    records = list(session.scalars(conversations))
    ids = [r.id for r in records]

    turn_count, latency_total = Decimal(0), Decimal(0)
    last_turn: dict[int, datetime] = {}
    if ids:
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            count, total = session.execute(
                select(func.count(TurnRecord.id), func.coalesce(func.sum(TurnRecord.latency_ms), 0))
                .where(TurnRecord.conversation_pk.in_(chunk))).one()
            turn_count += Decimal(count)
            latency_total += Decimal(total)
            for pk, latest in session.execute(
                select(TurnRecord.conversation_pk, func.max(TurnRecord.created_at))
                .where(TurnRecord.conversation_pk.in_(chunk)).group_by(TurnRecord.conversation_pk)):
                last_turn[pk] = latest if latest.tzinfo else latest.replace(tzinfo=start.tzinfo)

    handled_seconds, handled = Decimal(0), Decimal(0)
    for record in records:
        finished = record.ended_at or last_turn.get(record.id)
        if finished is None:
            continue
        handled += 1
        handled_seconds += Decimal(str(max((finished - record.started_at).total_seconds(), 0.0)))

    rated = [r.csat_score for r in records if r.csat_score is not None]
    satisfied = Decimal(sum(1 for score in rated if score >= SATISFIED_FROM))
    fcr = first_contact_resolution(session, start, end, channel=channel, as_of=now)

    return [
        Figure("response_time", "客户响应平均时间", _ratio(latency_total, turn_count, Decimal("0.001")), "秒",
               _q(latency_total / 1000), turn_count, "各轮回复用时合计（秒）", "客户消息轮数"),
        Figure("handling_time", "问题处理平均时长", _ratio(handled_seconds, handled, Decimal(1) / 60), "分钟",
               _q(handled_seconds), handled, "会话从开始到结束的时长合计（秒）", "会话数"),
        Figure("first_contact_resolution", "一次性问题解决率",
               _ratio(Decimal(fcr.resolved_first), Decimal(fcr.needs), Decimal(100)), "%",
               Decimal(fcr.resolved_first), Decimal(fcr.needs),
               f"首次接触即解决且{fcr.window_days}天内未再联系的需求数",
               f"首次接触的需求数（{fcr.window_days}天回访窗口已结束）", pending=fcr.pending),
        Figure("satisfaction", "智能服务满意度", _ratio(satisfied, Decimal(len(rated)), Decimal(100)), "%",
               satisfied, Decimal(len(rated)), "评价为满意及以上（4–5分）的会话数", "参与评价的会话数"),
    ]


def platform_figures(session: Session, period: str, now: datetime | None = None) -> list[Figure]:
    """智能服务平台/系统故障率 = 故障时长 / 电费服务时长 × 100 % over the probed time of the period.

    Table 1 defines it per year; per period it is the same ratio over that month (the year's is
    the sum of the months' numerators over the sum of their denominators). Only time the probe
    watched counts: a month nobody probed has no figure, not 0 %.
    """
    start, end = period_bounds(period)
    now = now or datetime.now(UTC)
    seen = availability(session, start, min(end, max(now, start)))
    fault = _q(Decimal(str(seen.fault_seconds)), "1")
    service = _q(Decimal(str(seen.service_seconds)), "1")
    value = None if service == 0 else (fault * 100 / service).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return [Figure("platform_fault_rate", "智能服务平台/系统故障率", value, "%", fault, service,
                   "故障时长（秒，可用性探测判定网页客服不可用）", "电费服务时长（秒，探测覆盖的时间）")]


def kpi_report(session: Session, period: str, channels: tuple[str, ...] = CHANNELS,
               now: datetime | None = None) -> KpiReport:
    period_bounds(period)  # validate before any query
    now = now or datetime.now(UTC)
    billing = [
        Figure(v.code, v.name, v.rate_percent, "%", v.numerator, v.denominator, v.numerator_label,
               v.denominator_label)
        for v in period_kpis(session, period)
    ]
    service = {"all": service_figures(session, period, now=now)}
    for channel in channels:
        service[channel] = service_figures(session, period, channel, now=now)
    return KpiReport(period=period, billing=billing, service=service, platform=platform_figures(session, period, now))


def shift_period(period: str, months: int) -> str:
    start, _ = period_bounds(period)
    index = start.year * 12 + start.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def latest_period_with_data(session: Session, now: datetime | None = None) -> str:
    """The newest period with any figure: billed bills, conversations or probe checks (else this month).

    The dashboard opens here. Each card then shows its own latest period with a figure, so billing
    cards show the last billed month while this month's cycle has not run yet.
    """
    now = now or datetime.now(UTC)
    found = []
    billed = session.scalar(select(func.max(Bill.period)))
    if billed:
        found.append(str(billed))
    for moment in (session.scalar(select(func.max(ConversationRecord.started_at))),
                   session.scalar(select(func.max(AvailabilityInterval.ended_at)))):
        if moment is not None:
            found.append(moment.astimezone(LOCAL_ZONE).strftime("%Y-%m"))
    return max(found) if found else now.astimezone(LOCAL_ZONE).strftime("%Y-%m")


def kpi_trend(session: Session, end_period: str, periods: int = 12,
              now: datetime | None = None) -> dict[str, object]:
    """Each KPI over the `periods` months ending at `end_period` (oldest first), for the dashboard."""
    period_bounds(end_period)
    now = now or datetime.now(UTC)
    names = [shift_period(end_period, offset) for offset in range(1 - periods, 1)]
    reports = [kpi_report(session, p, now=now) for p in names]

    def series(pick: list[Figure | None]) -> list[dict[str, object] | None]:
        return [None if f is None else figure_dict(f) for f in pick]

    # A month whose cycle has not run has no billing figures yet (its 0 % would only say "not billed").
    billed = session.scalar(select(func.max(Bill.period)))
    billing = [{"code": f.code, "name": f.name, "unit": f.unit,
                "points": series([r.figure(f.code) if billed and r.period <= billed else None for r in reports])}
               for f in reports[-1].billing]
    platform = [{"code": f.code, "name": f.name, "unit": f.unit,
                 "points": series([r.figure(f.code) for r in reports])} for f in reports[-1].platform]
    service = [{"code": f.code, "name": f.name, "unit": f.unit,
                "channels": {ch: series([r.figure(f.code, ch) for r in reports]) for ch in reports[-1].service}}
               for f in reports[-1].service["all"]]
    return {"periods": names, "billed_period": billed, "billing": billing, "platform": platform, "service": service}


def format_report(report: KpiReport) -> str:
    lines = [f"电费智能服务关键绩效指标（T/CI 1281—2025 表1） 账期 {report.period}", "", "一、电费结算"]
    for f in report.billing:
        lines.append(f"  {f.name:<10}{f.shown():>12}  = {f.numerator_label} {f.numerator} / "
                     f"{f.denominator_label} {f.denominator}")
    lines += ["", "二、平台运营"]
    for f in report.platform:
        lines.append(f"  {f.name:<10}{f.shown():>12}  = {f.numerator_label} {f.numerator} / "
                     f"{f.denominator_label} {f.denominator}")
    lines += ["", "三、智能服务"]
    for channel, figures in report.service.items():
        lines.append(f"  [{CHANNEL_NAMES.get(channel, channel)}]")
        for f in figures:
            lines.append(f"    {f.name:<10}{f.shown():>12}  = {f.numerator_label} {f.numerator} / "
                         f"{f.denominator_label} {f.denominator}")
    return "\n".join(lines)


def to_csv(report: KpiReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["账期", "类别", "渠道", "指标代码", "指标", "数值", "单位", "分子", "分子含义", "分母", "分母含义"])
    rows = [("电费结算", "all", f) for f in report.billing]
    rows += [("平台运营", "all", f) for f in report.platform]
    rows += [("智能服务", ch, f) for ch, figs in report.service.items() for f in figs]
    for group, channel, f in rows:
        writer.writerow([report.period, group, CHANNEL_NAMES.get(channel, channel), f.code, f.name,
                         ("待定" if f.pending else "") if f.value is None else str(f.value), f.unit, str(f.numerator), f.numerator_label,
                         str(f.denominator), f.denominator_label])
    return out.getvalue()
