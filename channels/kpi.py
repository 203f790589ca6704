"""The T/CI 1281—2025 table-1 report: billing KPIs from the billing core, service KPIs from the
agent's records, per period and channel.

Every figure carries its numerator and denominator so it can be checked by hand; a figure with
nothing to divide by is None (「无数据」), never a made-up 0 % or 100 %.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.models import ConversationRecord, TurnRecord
from agent.records import first_contact_resolution
from billing_core.kpi_store import period_kpis
from channels import registry as _channel_registry  # noqa: F401 - every channel registers its spec
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

    def shown(self) -> str:
        return "无数据" if self.value is None else f"{self.value}{self.unit}"


@dataclass
class KpiReport:
    period: str
    billing: list[Figure] = field(default_factory=list)
    service: dict[str, list[Figure]] = field(default_factory=dict)  # channel ("all", "web", …) → figures

    def as_dict(self) -> dict[str, object]:
        def figure(f: Figure) -> dict[str, object]:
            data = asdict(f)
            return {k: (None if v is None else str(v)) if isinstance(v, Decimal) or v is None else v
                    for k, v in data.items()}

        return {"period": self.period, "billing": [figure(f) for f in self.billing],
                "service": {ch: [figure(f) for f in figs] for ch, figs in self.service.items()}}


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


def service_figures(session: Session, period: str, channel: str | None = None) -> list[Figure]:
    """客户响应平均时间, 问题处理平均时长, 一次性问题解决率, 智能服务满意度 for conversations started in the period."""
    start, end = period_bounds(period)
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
    fcr = first_contact_resolution(session, start, end, channel=channel)

    return [
        Figure("response_time", "客户响应平均时间", _ratio(latency_total, turn_count, Decimal("0.001")), "秒",
               _q(latency_total / 1000), turn_count, "各轮回复用时合计（秒）", "客户消息轮数"),
        Figure("handling_time", "问题处理平均时长", _ratio(handled_seconds, handled, Decimal(1) / 60), "分钟",
               _q(handled_seconds), handled, "会话从开始到结束的时长合计（秒）", "会话数"),
        Figure("first_contact_resolution", "一次性问题解决率",
               _ratio(Decimal(fcr.resolved_first), Decimal(fcr.needs), Decimal(100)), "%",
               Decimal(fcr.resolved_first), Decimal(fcr.needs),
               f"首次接触即解决且{fcr.window_days}天内未再联系的需求数", "首次接触的需求数"),
        Figure("satisfaction", "智能服务满意度", _ratio(satisfied, Decimal(len(rated)), Decimal(100)), "%",
               satisfied, Decimal(len(rated)), "评价为满意及以上（4–5分）的会话数", "参与评价的会话数"),
    ]


def kpi_report(session: Session, period: str, channels: tuple[str, ...] = CHANNELS) -> KpiReport:
    period_bounds(period)  # validate before any query
    billing = [
        Figure(v.code, v.name, v.rate_percent, "%", v.numerator, v.denominator, v.numerator_label,
               v.denominator_label)
        for v in period_kpis(session, period)
    ]
    service = {"all": service_figures(session, period)}
    for channel in channels:
        service[channel] = service_figures(session, period, channel)
    return KpiReport(period=period, billing=billing, service=service)


def format_report(report: KpiReport) -> str:
    lines = [f"电费智能服务关键绩效指标（T/CI 1281—2025 表1） 账期 {report.period}", "", "一、电费结算"]
    for f in report.billing:
        lines.append(f"  {f.name:<10}{f.shown():>12}  = {f.numerator_label} {f.numerator} / "
                     f"{f.denominator_label} {f.denominator}")
    lines += ["", "二、智能服务"]
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
    rows += [("智能服务", ch, f) for ch, figs in report.service.items() for f in figs]
    for group, channel, f in rows:
        writer.writerow([report.period, group, CHANNEL_NAMES.get(channel, channel), f.code, f.name,
                         "" if f.value is None else str(f.value), f.unit, str(f.numerator), f.numerator_label,
                         str(f.denominator), f.denominator_label])
    return out.getvalue()
