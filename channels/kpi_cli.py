"""`powerdesk kpi report --period YYYY-MM`: the table-1 KPI report in the terminal (or CSV)."""

from __future__ import annotations

import typer

app = typer.Typer(help="运营指标：T/CI 1281—2025 表1（电费结算与智能服务）。", no_args_is_help=True)


@app.callback()
def kpi() -> None:
    """运营指标报表。"""


@app.command()
def report(
    period: str = typer.Option(..., help="账期 YYYY-MM"),
    csv_output: bool = typer.Option(False, "--csv", help="输出 CSV 而不是表格"),
) -> None:
    """打印某账期的电费 KPI 与智能服务 KPI（按渠道）。"""
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.db.engine import session_scope
    from channels.kpi import PeriodError, format_report, kpi_report, period_bounds, to_csv

    try:
        period_bounds(period)  # bad input is named before the database is looked at
    except PeriodError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from exc
    ensure_schema("billing", "agent")
    with session_scope() as session:
        result = kpi_report(session, period)
    typer.echo(to_csv(result) if csv_output else format_report(result))
