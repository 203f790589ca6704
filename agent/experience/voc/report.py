"""The periodic satisfaction report (guide §8.10–§8.11; T/CI 1281 §5.2d): CSAT by channel, intent,
customer class and week; FCR; response and handling times; complaints by category; negative
experiences — for one month, as Markdown (text bars) or one self-contained HTML page (inline SVG).

Only aggregates are shown: no 户号, phone, ID or name of any customer appears in the report.
Customer class comes from the classification module when it is merged (through the negative-
experience report's resolver), else from the tariff category of the billing record.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from html import escape

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.experience.negative.models import NegativeExperience
from agent.experience.negative.policy import remedy_policy
from agent.experience.negative.report import UNVERIFIED_CLASS, category_classes, default_class_resolver
from agent.experience.voc.charts import bar_chart, text_bars
from agent.experience.voc.indicators import KIND_CN, IndicatorValue, indicator_values
from agent.experience.voc.periods import ZONE, aware, period_bounds, previous_period
from agent.experience.voc.topics import TopicReport, topic_report
from agent.models import ConversationRecord, TurnRecord
from agent.records import FcrResult, first_contact_resolution
from billing_core.db.models import WorkOrder, WorkOrderKind
from tools.intake_complaint import CATEGORY_CN

SATISFIED_FROM = 4  # 4 满意, 5 非常满意 (the KPI dashboard's 智能服务满意度 uses the same cut)
NO_INTENT = "（未识别意图）"
TOP_TOPICS = 8


def _q(value: Decimal, places: str = "0.01") -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CsatRow:
    label: str
    conversations: int
    rated: int
    mean: Decimal | None  # mean score 1–5
    satisfied_percent: Decimal | None  # share rated 4–5

    @classmethod
    def of(cls, label: str, scores: list[int | None]) -> CsatRow:
        rated = [s for s in scores if s is not None]
        mean = _q(Decimal(sum(rated)) / len(rated)) if rated else None
        satisfied = _q(Decimal(sum(1 for s in rated if s >= SATISFIED_FROM)) * 100 / len(rated)) if rated else None
        return cls(label, len(scores), len(rated), mean, satisfied)


@dataclass
class SatisfactionReport:
    period: str
    generated_at: datetime
    conversations: int
    overall: CsatRow
    by_channel: list[CsatRow]
    by_intent: list[CsatRow]
    by_class: list[CsatRow]
    class_source: str
    by_week: list[CsatRow]
    fcr: FcrResult
    turns: int
    response_avg_seconds: Decimal | None
    response_p90_seconds: Decimal | None
    handled: int
    handling_avg_minutes: Decimal | None
    handling_p90_minutes: Decimal | None
    complaints: list[tuple[str, int]] = field(default_factory=list)
    negative_total: int = 0
    negative_previous_total: int = 0
    negative_by_cause: list[tuple[str, int]] = field(default_factory=list)
    negative_by_channel: list[tuple[str, int]] = field(default_factory=list)
    indicators: list[IndicatorValue] = field(default_factory=list)
    topics: TopicReport | None = None  # the high-frequency issues, when asked for (they cost an embedding pass)

    @property
    def fcr_percent(self) -> Decimal | None:
        return _q(Decimal(self.fcr.resolved_first) * 100 / self.fcr.needs) if self.fcr.needs else None


def _grouped(rows: Iterable[tuple[str, int | None]]) -> list[CsatRow]:
    groups: dict[str, list[int | None]] = defaultdict(list)
    for label, score in rows:
        groups[label].append(score)
    return sorted((CsatRow.of(label, scores) for label, scores in groups.items()),
                  key=lambda r: (-r.conversations, r.label))


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def satisfaction_report(session: Session, period: str, now: datetime | None = None, *,
                        topics: bool = False, topic_method: str = "embedding") -> SatisfactionReport:
    """Everything the report shows for the conversations started in `period` (China-time month);
    with `topics`, also the period's high-frequency issues (topics.py)."""
    start, end = period_bounds(period)
    now = now or datetime.now(UTC)
    records = list(session.scalars(select(ConversationRecord).where(
        ConversationRecord.started_at >= start, ConversationRecord.started_at < end)))
    resolver = default_class_resolver()
    class_source = ("客户分类（无分类的客户按电价类别）" if resolver is not category_classes
                    else "电价类别（客户分类模块未启用时的替代）")
    class_of = resolver(session, {r.account_no for r in records if r.account_no})

    def week(record: ConversationRecord) -> str:
        year, number, _ = aware(record.started_at).astimezone(ZONE).isocalendar()
        return f"{year}-W{number:02d}"

    latencies: list[float] = []
    last_turn: dict[int, datetime] = {}
    ids = [r.id for r in records]
    for offset in range(0, len(ids), 500):
        chunk = ids[offset:offset + 500]
        latencies += [float(ms) for ms in session.scalars(select(TurnRecord.latency_ms).where(TurnRecord.conversation_pk.in_(chunk)))]
        for pk, latest in session.execute(select(TurnRecord.conversation_pk, func.max(TurnRecord.created_at))
                                          .where(TurnRecord.conversation_pk.in_(chunk)).group_by(TurnRecord.conversation_pk)):
            last_turn[pk] = aware(latest)
    handling = []
    for record in records:
        finished = aware(record.ended_at) if record.ended_at else last_turn.get(record.id)
        if finished is not None:
            handling.append(max((finished - aware(record.started_at)).total_seconds(), 0.0) / 60)

    complaints = Counter(
        CATEGORY_CN.get(str((order.payload or {}).get("category", "other")), "其他")
        for order in session.scalars(select(WorkOrder).where(
            WorkOrder.kind == WorkOrderKind.COMPLAINT, WorkOrder.created_at >= start, WorkOrder.created_at < end)))
    policy = remedy_policy()
    negatives = list(session.scalars(select(NegativeExperience).where(
        NegativeExperience.opened_at >= start, NegativeExperience.opened_at < end)))
    previous_start, previous_end = period_bounds(previous_period(period))
    previous_negatives = int(session.scalar(select(func.count()).select_from(NegativeExperience).where(
        NegativeExperience.opened_at >= previous_start, NegativeExperience.opened_at < previous_end)) or 0)

    def mean(values: list[float], scale: float) -> Decimal | None:
        return _q(Decimal(str(sum(values) * scale / len(values)))) if values else None

    p90_latency, p90_handling = _percentile(latencies, 0.9), _percentile(handling, 0.9)
    return SatisfactionReport(
        period=period, generated_at=now, conversations=len(records),
        overall=CsatRow.of("全部", [r.csat_score for r in records]),
        by_channel=_grouped((r.channel, r.csat_score) for r in records),
        by_intent=_grouped((r.topic or (r.intents[0] if r.intents else NO_INTENT), r.csat_score) for r in records),
        by_class=_grouped((class_of.get(r.account_no, UNVERIFIED_CLASS) if r.account_no else UNVERIFIED_CLASS,
                           r.csat_score) for r in records),
        class_source=class_source,
        by_week=sorted(_grouped((week(r), r.csat_score) for r in records), key=lambda row: row.label),
        fcr=first_contact_resolution(session, start, end, as_of=now),
        turns=len(latencies), response_avg_seconds=mean(latencies, 0.001),
        response_p90_seconds=None if p90_latency is None else _q(Decimal(str(p90_latency / 1000))),
        handled=len(handling), handling_avg_minutes=mean(handling, 1.0),
        handling_p90_minutes=None if p90_handling is None else _q(Decimal(str(p90_handling))),
        complaints=complaints.most_common(),
        negative_total=len(negatives), negative_previous_total=previous_negatives,
        negative_by_cause=Counter(policy.cause_label(c) for n in negatives
                                  for c in dict.fromkeys(n.causes or [n.cause])).most_common(),
        negative_by_channel=Counter(n.channel for n in negatives).most_common(),
        indicators=indicator_values(session, period, now),
        topics=topic_report(session, period, method=topic_method) if topics else None)


def _shown(value: Decimal | None, unit: str = "") -> str:
    return "无数据" if value is None else f"{value}{unit}"


def _csat_table(title: str, rows: list[CsatRow]) -> list[str]:
    lines = [f"### {title}", "", "| 分组 | 会话数 | 参评数 | 平均分 | 满意率（4–5分） |", "|---|---|---|---|---|"]
    lines += [f"| {r.label} | {r.conversations} | {r.rated} | {_shown(r.mean)} | {_shown(r.satisfied_percent, '%')} |"
              for r in rows] or ["| （无会话） | 0 | 0 | 无数据 | 无数据 |"]
    return lines


def _sat_items(rows: list[CsatRow]) -> list[tuple[str, float | None]]:
    return [(r.label, None if r.satisfied_percent is None else float(r.satisfied_percent)) for r in rows]


def _sections(report: SatisfactionReport) -> list[tuple[str, list[CsatRow]]]:
    return [("按渠道", report.by_channel), ("按意图", report.by_intent),
            (f"按客户类别（{report.class_source}）", report.by_class), ("按周", report.by_week)]


def _summary(report: SatisfactionReport) -> list[tuple[str, str]]:
    fcr = report.fcr
    return [
        ("会话数", str(report.conversations)),
        ("满意度（满意率）", f"{_shown(report.overall.satisfied_percent, '%')}（{report.overall.rated} 个评价，平均 {_shown(report.overall.mean)} 分）"),
        ("一次性问题解决率（FCR）", f"{_shown(report.fcr_percent, '%')} = {fcr.resolved_first}/{fcr.needs}"
                                  + (f"，另有 {fcr.pending} 项在 {fcr.window_days} 天回访窗口内待定" if fcr.pending else "")),
        ("客户响应平均时间", f"{_shown(report.response_avg_seconds, ' 秒')}（P90 {_shown(report.response_p90_seconds, ' 秒')}，{report.turns} 轮）"),
        ("问题处理平均时长", f"{_shown(report.handling_avg_minutes, ' 分钟')}（P90 {_shown(report.handling_p90_minutes, ' 分钟')}，{report.handled} 个会话）"),
        ("投诉", f"{sum(c for _, c in report.complaints)} 件"),
        ("负面体验", f"{report.negative_total} 起（上期 {report.negative_previous_total} 起）"),
    ]


def format_markdown(report: SatisfactionReport) -> str:
    lines = [f"# 客户满意度报告 {report.period}", "",
             f"生成时间 {report.generated_at.astimezone(ZONE):%Y-%m-%d %H:%M}（北京时间）；只含汇总数据，不含任何客户的户号、电话、证件号。", "",
             "## 概览", "", "| 指标 | 数值 |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in _summary(report)]
    lines += ["", "## 满意度（CSAT，1–5 分）", ""]
    for title, rows in _sections(report):
        lines += [*_csat_table(title, rows), "", text_bars(_sat_items(rows), "%", 100), ""]
    lines += ["## 投诉分类", "", text_bars([(label, float(count)) for label, count in report.complaints], " 件"), "",
              "## 负面体验", "", f"本期 {report.negative_total} 起，上期 {report.negative_previous_total} 起。", "",
              "按原因：", "", text_bars([(label, float(c)) for label, c in report.negative_by_cause], " 起"), "",
              "按渠道：", "", text_bars([(label, float(c)) for label, c in report.negative_by_channel], " 起"), "",
              "## 客户体验测量指标（导则 §8.8）", "", "| 类别 | 指标 | 数值 | 公式 | 分子 / 分母 |", "|---|---|---|---|---|"]
    lines += [f"| {KIND_CN[v.kind]} | {v.name} | {_shown(v.value, v.unit)} | {v.formula} | {v.numerator} / {v.denominator} |"
              for v in report.indicators]
    if report.topics is not None:
        lines += ["", "## 高频问题", "", f"主题数 k={report.topics.k}（{report.topics.criterion}）", "",
                  "| 主题（高频词） | 消息数 | 上期 | 趋势 | 示例（已脱敏） |", "|---|---|---|---|---|"]
        lines += [f"| {t.label} | {t.count} | {t.previous_count} | {t.trend} | {'；'.join(t.examples).replace('|', '｜')} |"
                  for t in report.topics.topics[:TOP_TOPICS]]
    return "\n".join(lines) + "\n"


_STYLE = ("body{font-family:sans-serif;margin:24px;color:#222;max-width:980px}table{border-collapse:collapse;margin:8px 0}"
          "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#f2f5f9}section{margin-bottom:24px}"
          ".charts{display:flex;flex-wrap:wrap;gap:16px}")


def format_html(report: SatisfactionReport) -> str:
    """One self-contained page: inline CSS and SVG, no script, nothing fetched."""
    def table(head: list[str], rows: list[list[str]]) -> str:
        cells = "".join(f"<th>{escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><tr>{cells}</tr>{body}</table>"

    parts = [f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>客户满意度报告 {escape(report.period)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>客户满意度报告 {escape(report.period)}</h1>",
             f"<p>生成时间 {report.generated_at.astimezone(ZONE):%Y-%m-%d %H:%M}（北京时间）；只含汇总数据，不含任何客户的户号、电话、证件号。</p>",
             "<section><h2>概览</h2>", table(["指标", "数值"], [[n, v] for n, v in _summary(report)]), "</section>",
             "<section><h2>满意度（CSAT，1–5 分）</h2>"]
    for title, rows in _sections(report):
        parts.append(f"<h3>{escape(title)}</h3><div class=\"charts\">")
        parts.append(bar_chart(f"满意率 {title}", _sat_items(rows), "%", 100))
        parts.append(table(["分组", "会话数", "参评数", "平均分", "满意率"],
                           [[r.label, str(r.conversations), str(r.rated), _shown(r.mean), _shown(r.satisfied_percent, "%")]
                            for r in rows]))
        parts.append("</div>")
    parts += ["</section><section><h2>响应与处理</h2><div class=\"charts\">",
              bar_chart("平均 / P90 响应时间（秒）", [("平均", _f(report.response_avg_seconds)), ("P90", _f(report.response_p90_seconds))], " 秒"),
              bar_chart("平均 / P90 处理时长（分钟）", [("平均", _f(report.handling_avg_minutes)), ("P90", _f(report.handling_p90_minutes))], " 分钟"),
              bar_chart("一次性问题解决率", [("FCR", _f(report.fcr_percent))], "%", 100),
              "</div></section><section><h2>投诉分类</h2>",
              bar_chart("投诉（件）", [(label, float(c)) for label, c in report.complaints], " 件"),
              f"</section><section><h2>负面体验</h2><p>本期 {report.negative_total} 起，上期 {report.negative_previous_total} 起。</p><div class=\"charts\">",
              bar_chart("按原因（起）", [(label, float(c)) for label, c in report.negative_by_cause], " 起"),
              bar_chart("按渠道（起）", [(label, float(c)) for label, c in report.negative_by_channel], " 起"),
              "</div></section><section><h2>客户体验测量指标（导则 §8.8）</h2>",
              table(["类别", "指标", "数值", "公式", "分子 / 分母", "来源记录"],
                    [[KIND_CN[v.kind], v.name, _shown(v.value, v.unit), v.formula, f"{v.numerator} / {v.denominator}", v.records]
                     for v in report.indicators]), "</section>"]
    if report.topics is not None:
        top = report.topics.topics[:TOP_TOPICS]
        parts += [f"<section><h2>高频问题</h2><p>主题数 k={report.topics.k}（{escape(report.topics.criterion)}）</p>",
                  bar_chart("消息数", [(t.label, float(t.count)) for t in top], " 条"),
                  table(["主题（高频词）", "消息数", "上期", "趋势", "示例（已脱敏）"],
                        [[t.label, str(t.count), str(t.previous_count), t.trend, "；".join(t.examples)] for t in top]),
                  "</section>"]
    parts.append("</body></html>")
    return "".join(parts)


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
