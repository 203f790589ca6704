"""`powerdesk ops …`: the availability probe and the alert rules, once or on a schedule."""

from __future__ import annotations

import time

import typer

from billing_core.cli.schema_check import ensure_schema

app = typer.Typer(help="运维：可用性探测（智能服务平台/系统故障率）与告警规则。", no_args_is_help=True)


@app.callback()
def ops() -> None:
    """运维命令。"""


@app.command()
def probe(
    url: str = typer.Option("http://127.0.0.1:8000", help="被探测的 PowerDesk 服务地址"),
    every: float = typer.Option(60.0, min=1.0, help="探测间隔（秒）"),
    timeout: float = typer.Option(10.0, min=0.5, help="一次探测的超时（秒）"),
    once: bool = typer.Option(False, "--once", help="只探测一次（供定时任务调用）"),
    alerts_every: float = typer.Option(300.0, min=10.0, help="告警规则评估间隔（秒）"),
) -> None:
    """端到端探测网页客服（开始会话、发送消息、收到回复），把可用/故障区间写入数据库。"""
    from channels.logs import configure_logging
    from channels.monitor import Monitor, max_gap
    from channels.probe import probe_once

    if not url.startswith(("http://", "https://")):
        typer.echo("错误：url: 应以 http:// 或 https:// 开头", err=True)
        raise typer.Exit(2)
    ensure_schema()  # the probe records up/down intervals in the database
    configure_logging("INFO")
    if once:
        result = probe_once(url, max_gap(every), timeout)
        typer.echo(f"{'正常' if result.ok else '故障'} {result.latency_ms} ms" + (f" {result.error}" if result.error else ""))
        raise typer.Exit(0 if result.ok else 1)
    monitor = Monitor(url, probe_every=every, alerts_every=alerts_every, timeout=timeout)
    try:
        monitor.run()
    except KeyboardInterrupt:
        monitor.stop()


@app.command()
def alerts(
    every: float = typer.Option(300.0, min=5.0, help="评估间隔（秒）"),
    once: bool = typer.Option(False, "--once", help="只评估一次并列出未解除的告警"),
) -> None:
    """按 channels/ops_policy.yaml 评估告警规则：新告警写入、已恢复的解除。"""
    from channels.alerts import run_alerts_once
    from channels.logs import configure_logging

    ensure_schema()
    configure_logging("INFO")
    while True:
        open_alerts = run_alerts_once()
        if once:
            for alert in open_alerts:
                typer.echo(f"[{alert.severity}] {alert.rule}: {alert.message}（当前 {alert.value}，阈值 {alert.threshold}）")
            if not open_alerts:
                typer.echo("无未解除的告警")
            return
        time.sleep(every)
