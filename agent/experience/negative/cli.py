"""`powerdesk cx negative report --week 2026-W48` and `powerdesk cx negative scan`.

Mounted under `powerdesk cx` by agent/experience/cli.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

app = typer.Typer(help="负面客户体验（指南§7.4）：周报与记录扫描。", no_args_is_help=True)


@app.callback()
def cx_negative() -> None:
    """负面客户体验：按原因、渠道、客户类别的周报；从记录中发现转人工无人接待、低满意度。"""


@app.command()
def report(week: str = typer.Option(..., help="ISO 周，如 2026-W48（北京时间周一至周日）")) -> None:
    """打印一周的负面体验周报（Markdown，已脱敏）。"""
    from agent.experience.negative.report import WeekError, format_markdown, week_bounds, weekly_report
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope

    try:
        week_bounds(week)  # bad input is named before the database is looked at
    except WeekError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc
    ensure_schema("billing", "tools", "agent")
    with session_scope() as session:
        typer.echo(format_markdown(weekly_report(session, week)), nl=False)


@app.command()
def scan() -> None:
    """从记录中登记负面体验：等待超时无人接待的转人工、评价组件给出的1-2分（补救待人工联系）。"""
    from agent.experience.negative.policy import remedy_policy
    from agent.experience.negative.records import scan_records
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope

    ensure_schema("billing", "tools", "agent")
    policy = remedy_policy()
    with session_scope() as session:
        found = scan_records(session, datetime.now(UTC), policy)
        for row in found:
            typer.echo(f"{row.conversation_id}\t{policy.cause_label(row.causes[-1])}\t{row.channel}")
    typer.echo(f"新登记 {len(found)} 起负面体验。")
