"""`powerdesk cx-voc`: voice of the customer — high-frequency topics, the needs loop, the periodic
satisfaction report and the four kinds of CX indicators (folded under `powerdesk cx` at merge)."""

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
