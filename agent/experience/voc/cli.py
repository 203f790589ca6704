"""`powerdesk cx voc`: voice of the customer — high-frequency topics, the needs loop, the periodic
satisfaction report and the four kinds of CX indicators (mounted under `powerdesk cx`)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="客户之声：高频问题、诉求闭环、满意度报告与客户体验指标。", no_args_is_help=True)


@app.callback()
def voc() -> None:
    """客户之声（导则 §8.4、§8.8–§8.11）。"""


def _check_period(period: str) -> None:
    from agent.experience.voc.periods import PeriodError, period_bounds

    try:
        period_bounds(period)
    except PeriodError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def topics(
    period: str = typer.Option(..., help="账期 YYYY-MM"),
    method: str = typer.Option("embedding", help="embedding（知识库句向量，默认）或 tfidf（字符 n-gram，更快）"),
    k_min: int = typer.Option(2, help="主题数下限"),
    k_max: int = typer.Option(12, help="主题数上限（按轮廓系数在区间内选取）"),
) -> None:
    """某账期客户消息的高频问题（主题、数量、环比、脱敏示例）。"""
    _check_period(period)
    if method not in ("tfidf", "embedding") or not 2 <= k_min <= k_max:
        typer.echo("错误：method 应为 tfidf 或 embedding，且 2 ≤ k-min ≤ k-max", err=True)
        raise typer.Exit(2)
    from agent.experience.voc.topics import format_topics, topic_report
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope

    ensure_schema("billing", "agent")
    with session_scope() as session:
        result = topic_report(session, period, method=method, k_range=(k_min, k_max))
    typer.echo(format_topics(result))


@app.command()
def needs(
    overdue: bool = typer.Option(False, "--overdue", help="只列超期未办的诉求"),
    include_closed: bool = typer.Option(False, "--all", help="也列出近90天已办结的"),
    at: str = typer.Option("", "--at", help="以此时刻判断是否超期（ISO 时间，缺省为现在）"),
) -> None:
    """诉求闭环：未能当场解决的工单、转人工和未决问题，各自的响应时限与状态。"""
    from datetime import UTC, datetime

    from agent.experience.voc.needs import format_needs
    from agent.experience.voc.needs import needs as list_needs
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope

    try:
        now = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError as exc:
        typer.echo(f"错误：at: 应为 ISO 时间（例如 2026-11-30T12:00+08:00），收到 {at!r}", err=True)
        raise typer.Exit(2) from exc
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    ensure_schema("billing", "tools", "agent")
    with session_scope() as session:
        rows = list_needs(session, now, include_closed=include_closed)
    if overdue:
        rows = [n for n in rows if n.overdue and not n.closed]
    typer.echo(format_needs(rows, now))


@app.command()
def report(
    period: str = typer.Option(..., help="账期 YYYY-MM"),
    output_format: str = typer.Option("md", "--format", help="md 或 html"),
    output: Path | None = typer.Option(None, "--output", "-o", help="写入文件（缺省打印）"),
    with_topics: bool = typer.Option(True, "--topics/--no-topics", help="附高频问题分析（需一次句向量计算）"),
) -> None:
    """某账期的客户满意度报告（按渠道、意图、客户类别、周；FCR；响应与处理时长；投诉；负面体验）。"""
    _check_period(period)
    if output_format not in ("md", "html"):
        typer.echo(f"错误：format: 应为 md 或 html，收到 {output_format!r}", err=True)
        raise typer.Exit(2)
    from agent.experience.voc.report import format_html, format_markdown, satisfaction_report
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope

    ensure_schema("billing", "tools", "agent")
    with session_scope() as session:
        result = satisfaction_report(session, period, topics=with_topics)
    text = format_html(result) if output_format == "html" else format_markdown(result)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"已写入 {output}")


@app.command()
def indicators(
    period: str = typer.Option(..., help="账期 YYYY-MM"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON"),
) -> None:
    """导则 §8.8 的四类客户体验指标（交互/感知/行为/结果），各带公式、分子分母与来源记录。"""
    _check_period(period)
    import json

    from agent.experience.voc.indicators import format_indicators, indicator_values
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope

    ensure_schema("billing", "tools", "agent")
    with session_scope() as session:
        values = indicator_values(session, period)
    typer.echo(json.dumps([v.as_dict() for v in values], ensure_ascii=False, indent=1) if as_json
               else format_indicators(period, values))
