"""`powerdesk notify …`: deliver the outbox (bill issued, due soon, dunning, opt-in alerts)."""

from __future__ import annotations

import signal
from typing import Any

import typer

from billing_core.cli.schema_check import ensure_schema

app = typer.Typer(help="通知发送：把账单、催费等待发通知经微信模板消息、短信、邮件发出。", no_args_is_help=True)


@app.callback()
def notify() -> None:
    """通知发送命令。"""


@app.command()
def run(
    drain: bool = typer.Option(False, "--drain", help="发完当前到期的通知即退出（供定时任务调用）"),
    batch: int = typer.Option(200, min=1, max=5000, help="每批领取的条数"),
    concurrency: int = typer.Option(16, min=1, max=256, help="并发发送线程数"),
    poll: float = typer.Option(1.0, min=0.05, help="无待发通知时的轮询间隔（秒）"),
    lease: float = typer.Option(0.0, min=0.0, help="领取租约（秒），0 = 按策略文件"),
) -> None:
    """领取待发通知并发送；可在多个进程/机器上同时运行（租约领取，互不重复）。"""
    from channels.logs import configure_logging
    from channels.notify.worker import worker_from_env

    ensure_schema("billing")  # the outbox is a billing table
    configure_logging("INFO")
    worker = worker_from_env(batch_size=batch, concurrency=concurrency, poll_seconds=poll,
                             lease_seconds=lease or None)
    if not worker.senders:
        typer.echo("错误：未配置任何发送渠道（POWERDESK_WECHAT_APP_SECRET / POWERDESK_SMS_ACCESS_KEY_SECRET / "
                   "POWERDESK_SMTP_HOST）", err=True)
        raise typer.Exit(2)

    def _stop(*_args: Any) -> None:
        worker.stop()  # finish the batch in hand, record it, then exit

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        totals = worker.run(drain=drain)
    finally:
        worker.close()
    typer.echo("，".join(f"{k} {v}" for k, v in sorted(totals.items())) or "无待发通知")


@app.command()
def status() -> None:
    """各状态的通知条数（pending 待发 / sent 已发 / failed 失败 / skipped 未订阅）。"""
    from billing_core.db.engine import session_scope
    from billing_core.operations.outbox import counts

    ensure_schema("billing")  # the outbox is a billing table
    with session_scope() as session:
        for name, number in sorted(counts(session).items()):
            typer.echo(f"{name}\t{number}")


@app.command("opt-in")
def opt_in(
    account_no: str = typer.Argument(..., help="户号"),
    kind: str = typer.Argument(..., help="通知类别，如 anomaly_alert、forecast_above_usual"),
) -> None:
    """登记客户订阅一类可选通知（用电异常提醒、电费预计偏高提醒）。"""
    from billing_core.db.engine import session_scope
    from billing_core.operations.outbox import opt_in as record
    from channels.notify.policy import load_policy

    policy = load_policy()
    if not policy.needs_opt_in(kind):
        typer.echo(f"错误：kind: {kind!r} 不是需订阅的通知类别（可选：{', '.join(k for k, r in policy.kinds.items() if r.opt_in)}）",
                   err=True)
        raise typer.Exit(2)
    ensure_schema("billing")  # the outbox is a billing table
    with session_scope() as session:
        added = record(session, account_no, kind, source="staff")
    typer.echo("已登记" if added else "已订阅过")


if __name__ == "__main__":  # `python -m channels.notify.cli run` (what the crash tests start)
    app()
