"""`powerdesk billing run-cycle | release | pay | reconcile | load-readings | dun | kpi`: the monthly operations.

Registered on the billing app by `cli.py` (`register(app)`). Every input is checked before the
database is touched; bad input prints a message naming the field to stderr and exits with 2,
and each command runs in one transaction, so a refused or failed command writes nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from billing_core.cli.schema_check import ensure_schema
from billing_core.errors import BillingError

BAD_INPUT_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1


def _fail(message: str, code: int = BAD_INPUT_EXIT_CODE) -> NoReturn:
    typer.echo(f"错误：{message}", err=True)
    raise typer.Exit(code=code)


def _period(value: str) -> str:
    from billing_core.periods import period_bounds

    try:
        period_bounds(value, "--period")
    except BillingError as exc:
        _fail(str(exc))
    return value.strip()


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{field}: {value!r} 不是 YYYY-MM-DD 日期")


@contextmanager
def _transaction() -> Iterator[Session]:
    """One unit of work on the configured database; a refusal or a failure rolls it all back."""
    from billing_core.db.engine import session_scope

    ensure_schema("billing")
    try:
        with session_scope() as session:
            yield session
    except BillingError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"数据库错误（是否已运行 `powerdesk db upgrade`？）：{exc.__class__.__name__}: {exc.args[0] if exc.args else exc}",
              FAILURE_EXIT_CODE)


def run_cycle_command(
    period: Annotated[str, typer.Option("--period", help="账期 YYYY-MM")],
    issue_date: Annotated[str | None, typer.Option("--issue-date", help="发行日 YYYY-MM-DD（默认今天）")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="显示进度条")] = True,
) -> None:
    """抄表→计算→核查→发行：运行一个账期的电费周期。已发行的账期再次运行不做任何更改。"""
    from billing_core.cycle.run import run_cycle

    period = _period(period)
    day = _day(issue_date, "--issue-date")
    with _transaction() as session:
        result = run_cycle(session, period, issue_date=day, progress=progress)
    typer.echo(result.summary())


def release_command(
    period: Annotated[str, typer.Option("--period", help="账期 YYYY-MM")],
    issue_date: Annotated[str | None, typer.Option("--issue-date", help="发行日 YYYY-MM-DD（默认今天）")] = None,
) -> None:
    """发行复核工单已办结的暂缓账单；示数异常未出账的客户在复核办结后补算出账。"""
    from billing_core.cycle.run import release_reviewed_bills

    period = _period(period)
    day = _day(issue_date, "--issue-date")
    with _transaction() as session:
        result = release_reviewed_bills(session, period, issue_date=day)
    typer.echo(f"账期 {period}：本次发行 {result.released} 张（其中复核后补算 {result.rebilled} 张），"
               f"仍待复核 {result.still_held} 张，示数仍异常 {result.still_blocked} 户，通知 {result.notifications} 条。")


def pay_command(
    bill_no: Annotated[str, typer.Option("--bill-no", help="账单编号")],
    amount: Annotated[str, typer.Option("--amount", help="金额（元，最多两位小数）")],
    channel: Annotated[str, typer.Option("--channel", help="wechat_pay / alipay / bank_withholding / counter / prepaid / bank_transfer")],
    key: Annotated[str, typer.Option("--key", help="幂等键：同一笔缴费重复提交时用同一个键")],
    currency: Annotated[str, typer.Option("--currency", help="币种，仅 CNY")] = "CNY",
    paid_at: Annotated[str | None, typer.Option("--paid-at", help="缴费时间 ISO 8601（默认现在，UTC）")] = None,
) -> None:
    """登记一笔缴费。重复提交同一幂等键只记一次；已结清账单再缴费生成退费工单。"""
    from billing_core.operations.payments import PaymentRequest
    from billing_core.operations.payments_store import post_payment

    when = datetime.now(UTC)
    if paid_at is not None:
        try:
            when = datetime.fromisoformat(paid_at)
        except ValueError:
            _fail(f"--paid-at: {paid_at!r} 不是 ISO 8601 时间")
        if when.tzinfo is None:
            _fail(f"--paid-at: {paid_at!r} 缺少时区（例如 2026-08-05T09:30:00+08:00）")
    try:
        request = PaymentRequest.parse(bill_no, amount, channel, key, when, currency)
    except BillingError as exc:
        _fail(str(exc))
    with _transaction() as session:
        result = post_payment(session, request)
    typer.echo(result.message)
    if result.refund_work_order:
        typer.echo(f"退费工单：{result.refund_work_order}")


def reconcile_command(
    statement: Annotated[Path, typer.Argument(help="银行对账文件 CSV")],
) -> None:
    """导入银行对账文件并自动对账；异常生成对账工单，坏行按行号搁置，文件整体成功或整体不导入。"""
    from billing_core.operations.reconciliation_store import import_statement

    try:
        data = statement.read_bytes()
    except OSError as exc:
        _fail(f"FILE: 无法读取 {statement}（{exc.strerror or exc}）")
    with _transaction() as session:
        result = import_statement(session, data, statement.name)
    typer.echo(result.summary())


REJECTS_EXIT_CODE = 3  # the good rows are loaded, some rows were refused (see the rejects file)


def load_readings_command(
    readings: Annotated[Path, typer.Argument(help="抄表数据 CSV：asset_no,date,register,value（见 docs/billing-operations.md）")],
    rejects: Annotated[Path | None, typer.Option("--rejects", help="退回行 CSV（默认：FILE 旁的 FILE.rejects.csv）")] = None,
) -> None:
    """导入日冻结示数：逐行校验，好行批量入库（PostgreSQL 用 COPY），坏行按行号和原因写入退回文件。重复导入同一文件不重复入库。"""
    from billing_core.readings_csv import load_readings, write_rejects

    rejects = rejects or readings.with_name(readings.name + ".rejects.csv")
    with _transaction() as session:
        result = load_readings(session, readings)
    typer.echo(result.summary())
    if result.rejects:
        write_rejects(rejects, result)
        typer.echo(f"退回行已写入 {rejects}（行号、原字段、原因）。", err=True)
        raise typer.Exit(code=REJECTS_EXIT_CODE)
    rejects.unlink(missing_ok=True)  # a stale rejects file from an earlier run would mislead


def dun_command(
    as_of: Annotated[str, typer.Option("--as-of", help="催费基准日 YYYY-MM-DD")],
) -> None:
    """催费：计算违约金，按逾期天数和金额分层发送提醒或生成外呼工单。"""
    from billing_core.operations.dunning_store import run_dunning

    day = _day(as_of, "--as-of")
    assert day is not None
    with _transaction() as session:
        result = run_dunning(session, day)
    typer.echo(result.summary())


def kpi_command(
    period: Annotated[str, typer.Option("--period", help="账期 YYYY-MM")],
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """电费智能服务关键绩效指标（T/CI 1281—2025 表1），含分子分母。"""
    from billing_core.operations.kpi import format_table
    from billing_core.operations.kpi_store import period_kpis

    period = _period(period)
    with _transaction() as session:
        values = period_kpis(session, period)
    if as_json:
        sys.stdout.write(json.dumps({"period": period, "kpis": [v.as_dict() for v in values]},
                                    ensure_ascii=False, indent=2) + "\n")
    else:
        typer.echo(format_table(period, values))


COMMANDS: dict[str, Callable[..., None]] = {
    "run-cycle": run_cycle_command,
    "release": release_command,
    "pay": pay_command,
    "reconcile": reconcile_command,
    "load-readings": load_readings_command,
    "dun": dun_command,
    "kpi": kpi_command,
}


def register(app: typer.Typer) -> None:
    """Add the operations commands to the `powerdesk billing` app."""
    for name, command in COMMANDS.items():
        app.command(name)(command)
