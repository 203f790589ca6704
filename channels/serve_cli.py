"""`powerdesk serve`: run the web service with uvicorn (what `make run` starts)."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

app = typer.Typer(help="启动 PowerDesk 服务（网页客服、微信、热线、坐席台、运营看板）。")

# Set by `serve` for worker processes, which build their app in a fresh interpreter.
_WORKER_LOG_LEVEL = "POWERDESK_SERVE_LOG_LEVEL"
_WORKER_WARM = "POWERDESK_SERVE_WARM"


def warm_up(application: Any) -> None:
    """Load the intent classifier and the knowledge base before the first customer waits for them."""
    from agent.local_brain import LocalBrain
    from agent.nlu import get_classifier

    agent = application.state.services.agent
    get_classifier()  # every turn is understood locally, whichever brain answers it
    LocalBrain.preload()
    knowledge = getattr(agent, "knowledge", None)
    if callable(knowledge):
        knowledge().search("电费怎么交")  # the embedder's tokenizer loads on the first query


def worker_app() -> Any:
    """The app of one uvicorn worker process (`--workers N`): logging and warm-up as `serve` does."""
    from channels.app import create_app
    from channels.logs import configure_logging

    configure_logging(os.environ.get(_WORKER_LOG_LEVEL, "INFO").upper())
    application = create_app()
    if os.environ.get(_WORKER_WARM, "1") == "1":
        warm_up(application)
    return application


@app.callback(invoke_without_command=True)
def serve(
    host: str = typer.Option("127.0.0.1", help="监听地址"),
    port: int = typer.Option(8000, min=1, max=65535, help="监听端口"),
    log_level: str = typer.Option("info", help="日志级别"),
    warm: bool = typer.Option(True, help="启动时先加载智能客服模型（首个请求不必等待）"),
    workers: int = typer.Option(1, min=1, max=32, help="工作进程数（多于 1 个时须配置 POWERDESK_REDIS_URL 共享会话状态）"),
) -> None:
    import uvicorn

    from billing_core.cli.schema_check import ensure_schema
    from channels.app import create_app
    from channels.logs import configure_logging

    ensure_schema()
    if workers > 1:
        # Each worker is its own process: dialogue state, WeChat de-duplication and rate windows
        # are only shared through Redis; without it a conversation would split between workers.
        if not os.environ.get("POWERDESK_REDIS_URL"):
            print("workers: 多于 1 个工作进程时须设置 POWERDESK_REDIS_URL（会话状态、消息去重须跨进程共享）",
                  file=sys.stderr)
            raise typer.Exit(2)
        from channels.workers import run_workers

        os.environ[_WORKER_LOG_LEVEL] = log_level  # read by worker_app in each worker process
        os.environ[_WORKER_WARM] = "1" if warm else "0"
        configure_logging(log_level.upper())
        raise typer.Exit(run_workers(workers, host, port, log_level))

    configure_logging(log_level.upper())
    application = create_app()
    if warm:
        warm_up(application)
    uvicorn.run(application, host=host, port=port, log_config=None, log_level=log_level,
                access_log=False, timeout_graceful_shutdown=5)
