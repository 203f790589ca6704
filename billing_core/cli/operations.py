"""`powerdesk billing run-cycle | release | pay | reconcile | load-readings | dun | kpi`: the monthly operations.

Registered on the billing app by `cli.py` (`register(app)`). Every input is checked before the
database is touched; bad input prints a message naming the field to stderr and exits with 2,
and each command runs in one transaction, so a refused or failed command writes nothing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from billing_core.cli.schema_check import ensure_schema
from billing_core.errors import BillingError

BAD_INPUT_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1
T = TypeVar("T")


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
def _transaction(after_disconnect: str = "本次更改已全部回滚，数据库恢复后重新运行") -> Iterator[Session]:
    """One unit of work on the configured database; a refusal or a failure rolls it all back.

    A connection lost mid-command (the server restarted, a failover, the network) is told apart
    from a schema problem: the operator is to wait and re-run, not to migrate. `after_disconnect`
    says what a re-run does (a command committing in batches says so).
    """
    from billing_core.db.engine import session_scope

    driver_error: type[Exception] = SQLAlchemyError
    try:
        ensure_schema("billing")  # the first connection: a server that is not there is told here
        with session_scope() as session:
            driver_error = session.get_bind().dialect.loaded_dbapi.OperationalError
            yield session
    except BillingError as exc:
        _fail(str(exc))
    except Exception as exc:
        # A driver error escaping SQLAlchemy (e.g. from under a COPY) is a lost connection too.
        lost = (isinstance(exc, DBAPIError) and exc.connection_invalidated) or (
            isinstance(exc, driver_error) and not isinstance(exc, SQLAlchemyError))
        detail = f"{exc.__class__.__name__}: {str(exc.args[0] if exc.args else exc).strip()}"
        if not lost and database_down(exc):
            _fail(f"无法连接数据库（服务器未启动、正在重启或网络故障），未做任何更改，数据库恢复后重新运行。{detail}",
                  FAILURE_EXIT_CODE)
        if lost:
            _fail(f"数据库连接中断（服务器重启、主备切换或网络故障）：{after_disconnect}。{detail}", FAILURE_EXIT_CODE)
        if isinstance(exc, SQLAlchemyError):
            _fail(f"数据库错误（是否已运行 `powerdesk db upgrade`？）：{detail}", FAILURE_EXIT_CODE)
        raise


def database_down(exc: BaseException) -> bool:
    """The server is not there — refused, shutting down, restarting, in crash recovery — or the
    connection to it broke: a wait fixes it. A wrong URL, a missing database or a refused login do
    not (the server answered with its own SQLSTATE), nor does SQLite's "unable to open"."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", "")  # psycopg: None when no server answered; sqlite3: none
    return sqlstate is None or str(sqlstate)[:2] in ("08", "57")  # connection exception, operator intervention


def _waiting_for_the_database(step: Callable[[Session], T], log: Callable[[str], None]) -> T:
    """One of cycle-worker's own transactions (its start check, its closing summary), run once the
    database is up. Its chunks wait out a restart or a failover (cycle/partitioned.py `work`), and so
    must these: a worker a process manager starts while PostgreSQL is still coming up, or that
    starts in the seconds of a restart, waits instead of dying in a traceback."""
    from billing_core.cycle.partitioned import DATABASE_RETRY_SECONDS, MAX_DATABASE_ERRORS
    from billing_core.db.engine import session_scope

    for attempt in range(1, MAX_DATABASE_ERRORS):
        try:
            ensure_schema("billing")
            with session_scope() as session:
                return step(session)
        except SQLAlchemyError as exc:
            if not database_down(exc):
                break  # no wait fixes it: the usual message, below
            log(f"数据库暂不可用，{DATABASE_RETRY_SECONDS:g} 秒后重试（第 {attempt} 次）：{exc.__class__.__name__}")
            time.sleep(DATABASE_RETRY_SECONDS)
    with _transaction() as session:  # the last try; its failure is reported like any command's
        return step(session)


def run_cycle_command(
    period: Annotated[str, typer.Option("--period", help="账期 YYYY-MM")],
    issue_date: Annotated[str | None, typer.Option("--issue-date", help="发行日 YYYY-MM-DD（默认今天）")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="显示进度条")] = True,
    workers: Annotated[int | None, typer.Option("--workers", min=1,
                                                help="分区并行：启动 N 个工作进程（PostgreSQL；省略则单进程单事务）")] = None,
    partition_size: Annotated[int, typer.Option("--partition-size", min=1, help="每个分区的客户数")] = 2000,
    lease: Annotated[int, typer.Option("--lease", min=1, help="分区租约秒数：进程失联后由其他进程接管")] = 120,
    prepare_only: Annotated[bool, typer.Option("--prepare-only", help="只登记账期和分区，由各主机的 cycle-worker 处理")] = False,
) -> None:
    """抄表→计算→核查→发行：运行一个账期的电费周期。已发行的账期再次运行不做任何更改。

    With --workers the customers are cut into partitions that worker processes claim from the
    database (billing_core/cycle/partitioned.py); the bills are the same as a one-process run."""
    from billing_core.cycle.run import run_cycle

    period = _period(period)
    day = _day(issue_date, "--issue-date")
    if workers is None and not prepare_only:
        with _transaction() as session:
            result = run_cycle(session, period, issue_date=day, progress=progress)
        typer.echo(result.summary())
        return
    _run_partitioned(period, day, workers or 0, partition_size, lease, progress)


def _run_partitioned(period: str, day: date | None, workers: int, partition_size: int, lease: int,
                     progress: bool) -> None:
    from datetime import timedelta

    from billing_core.cycle.partitioned import prepare, run_with_workers
    from billing_core.settings import database_url

    url = database_url()
    if workers > 1 and url.startswith("sqlite"):
        _fail("--workers: SQLite 只允许一个写入者，多进程周期请使用 PostgreSQL（POWERDESK_DATABASE_URL）")
    with _transaction() as session:
        prepared = prepare(session, period, issue_date=day, partition_size=partition_size)
    if prepared.already_done:
        typer.echo(f"账期 {period} 已运行并发行，本次未做任何更改。")
        return
    typer.echo(f"账期 {period}：{prepared.partitions} 个分区"
               + ("（新登记）" if prepared.created else "（续跑）")
               + (f"，{prepared.retried} 个失败分区重新排队" if prepared.retried else "") + "。", err=True)
    if not workers:
        typer.echo(f"在各主机运行 `powerdesk billing cycle-worker --period {period}` 处理分区。")
        return
    state = run_with_workers(period, workers, url=url, lease=timedelta(seconds=lease),
                             progress=progress and sys.stderr.isatty(),
                             log=lambda message: typer.echo(message, err=True))
    typer.echo(state.summary())
    if not state.finished:
        raise typer.Exit(code=FAILURE_EXIT_CODE)


def cycle_worker_command(
    period: Annotated[str, typer.Option("--period", help="账期 YYYY-MM")],
    lease: Annotated[int, typer.Option("--lease", min=1, help="分区租约秒数")] = 120,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, help="一个分区最多尝试次数，之后搁置")] = 3,
    verbose: Annotated[bool, typer.Option("--verbose", help="逐个分区记录领取与完成")] = False,
) -> None:
    """周期工作进程：从数据库领取账期分区逐个处理，直到没有剩余分区（可在多台主机同时运行）。"""
    from datetime import timedelta

    from sqlalchemy import select

    from billing_core.cycle.partitioned import finalize, work
    from billing_core.db.operations_models import CyclePartition

    period = _period(period)

    def log(message: str) -> None:
        typer.echo(message, err=True)

    def has_partitions(session: Session) -> bool:
        return session.scalar(select(CyclePartition.id).where(CyclePartition.period == period).limit(1)) is not None

    if not _waiting_for_the_database(has_partitions, log):
        _fail(f"--period: 账期 {period} 没有分区：先运行 `powerdesk billing run-cycle --period {period} "
              "--prepare-only`（或 --workers N）")
    stats = work(period, lease=timedelta(seconds=lease), max_attempts=max_attempts, log=log,
                 trace=log if verbose else lambda _message: None)
    typer.echo(f"{stats.worker}：处理分区 {stats.partitions} 个，被接管 {stats.lost} 个，出错 {stats.errors} 次。", err=True)
    state = _waiting_for_the_database(lambda session: finalize(session, period), log)
    if state.finished:
        typer.echo(state.summary())


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
    with _transaction("已提交的批次保留，数据库恢复后重新运行同一文件，只补入未入库的行") as session:
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
    """催费：计算违约金，按逾期天数和金额分层发送提醒或生成外呼工单；并为即将到期的账单排入缴费提醒。"""
    from billing_core.operations.dunning_store import queue_due_soon, run_dunning

    day = _day(as_of, "--as-of")
    assert day is not None
    with _transaction() as session:
        result = run_dunning(session, day)
        due_soon = queue_due_soon(session, day)
    typer.echo(result.summary())
    typer.echo(f"缴费提醒（即将到期）：新增通知 {due_soon} 条。")


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
    "cycle-worker": cycle_worker_command,
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
