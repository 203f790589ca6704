"""`powerdesk serve`: run the web service with uvicorn (what `make run` starts)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import typer

app = typer.Typer(help="启动 PowerDesk 服务（网页客服、微信、热线、坐席台、运营看板）。")

# Set by `serve` for worker processes, which build their app in a fresh interpreter.
_WORKER_LOG_LEVEL = "POWERDESK_SERVE_LOG_LEVEL"
_WORKER_WARM = "POWERDESK_SERVE_WARM"


def warm_up(application: Any) -> None:
    """Load the agent, the intent classifier and the knowledge base (logged step by step)."""
    from channels.startup import warm_up as load

    load(application)


def worker_app() -> Any:
    """The app of one uvicorn worker process (`--workers N`): logging and warm-up as `serve` does.

    A worker warms up before it listens, so the kernel never hands a connection to a worker
    that is still loading (its SO_REUSEPORT socket does not exist yet)."""
    from channels.app import create_app
    from channels.logs import configure_logging

    configure_logging(os.environ.get(_WORKER_LOG_LEVEL, "INFO").upper())
    application = create_app()
    if os.environ.get(_WORKER_WARM, "1") == "1":
        warm_up(application)
    return application


def _monitor(host: str, port: int) -> Any:
    from channels.monitor import Monitor

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return Monitor(f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}").start()


def _notifier() -> Any:
    """The outbox worker in a thread of this process (one per `serve`, not per uvicorn worker)."""
    from channels.notify.worker import worker_from_env

    worker = worker_from_env()
    if worker.senders:
        worker.start_thread()
    else:
        logging.getLogger("powerdesk.notify").warning("--notify: no channel configured, nothing is sent")
    return worker


@app.callback(invoke_without_command=True)
def serve(
    host: str = typer.Option("127.0.0.1", help="监听地址"),
    port: int = typer.Option(8000, min=1, max=65535, help="监听端口"),
    log_level: str = typer.Option("info", help="日志级别"),
    warm: bool = typer.Option(True, help="启动时先加载智能客服模型（首个请求不必等待）"),
    workers: int = typer.Option(1, min=1, max=32, help="工作进程数（多于 1 个时须配置 POWERDESK_REDIS_URL 共享会话状态）"),
    monitor: bool = typer.Option(False, help="在本进程内定时运行可用性探测与告警评估（生产环境宜在另一台机器运行 powerdesk ops probe）"),
    notify: bool = typer.Option(
        os.environ.get("POWERDESK_NOTIFY_IN_SERVE", "0") == "1",
        help="在本进程内运行通知发送（同 powerdesk notify run；默认读 POWERDESK_NOTIFY_IN_SERVE）"),
) -> None:
    import uvicorn

    from billing_core.cli.schema_check import ensure_schema
    from billing_core.settings import var_dir
    from channels.app import create_app
    from channels.logs import configure_logging
    from channels.metrics import MULTIPROC_ENV, prepare_multiprocess_dir
    from channels.settings import shutdown_grace_seconds

    if workers > 1:
        # Each worker is its own process: dialogue state, WeChat de-duplication and rate windows
        # are only shared through Redis; without it a conversation would split between workers.
        if not os.environ.get("POWERDESK_REDIS_URL"):
            print("workers: 多于 1 个工作进程时须设置 POWERDESK_REDIS_URL（会话状态、消息去重须跨进程共享）",
                  file=sys.stderr)
            raise typer.Exit(2)
    ensure_schema()  # after the options are checked: bad input is named first
    if workers > 1:
        from channels.workers import run_workers

        os.environ[_WORKER_LOG_LEVEL] = log_level  # read by worker_app in each worker process
        os.environ[_WORKER_WARM] = "1" if warm else "0"
        configure_logging(log_level.upper())
        # Before any worker starts: each then writes its metrics to files one /metrics adds up.
        metrics_dir = prepare_multiprocess_dir(var_dir(), f"serve-{port}")
        logging.getLogger("powerdesk.channels").info(
            "starting %s workers (each loads its models before it listens)", workers,
            extra={"workers": workers, "metrics_dir": str(metrics_dir)})
        watcher = _monitor(host, port) if monitor else None
        sender = _notifier() if notify else None
        code = run_workers(workers, host, port, log_level)
        if watcher is not None:
            watcher.stop()
        if sender is not None:
            sender.close()
        raise typer.Exit(code)

    configure_logging(log_level.upper())
    if os.environ.get(MULTIPROC_ENV):  # an operator's multiprocess directory: this run's files only
        prepare_multiprocess_dir(var_dir(), f"serve-{port}")
    application = create_app()
    if warm:
        from channels.startup import warm_up_in_background

        # Listen at once: /healthz answers 503 "starting" (and says what is loading) until ready.
        warm_up_in_background(application)
    watcher = _monitor(host, port) if monitor else None
    sender = _notifier() if notify else None
    # SIGTERM: stop accepting, let in-flight turns finish (up to the grace), then exit 0.
    uvicorn.run(application, host=host, port=port, log_config=None, log_level=log_level,
                access_log=False, timeout_graceful_shutdown=shutdown_grace_seconds())
    if watcher is not None:
        watcher.stop()
    if sender is not None:
        sender.close()
