"""`powerdesk serve`: run the web service with uvicorn (what `make run` starts)."""

from __future__ import annotations

import typer

app = typer.Typer(help="启动 PowerDesk 服务（网页客服、微信、热线、坐席台、运营看板）。")


@app.callback(invoke_without_command=True)
def serve(
    host: str = typer.Option("127.0.0.1", help="监听地址"),
    port: int = typer.Option(8000, min=1, max=65535, help="监听端口"),
    log_level: str = typer.Option("info", help="日志级别"),
    warm: bool = typer.Option(True, help="启动时先加载智能客服模型（首个请求不必等待）"),
) -> None:
    import uvicorn

    from channels.app import create_app
    from channels.logs import configure_logging

    configure_logging(log_level.upper())
    app = create_app()
    if warm:  # load the classifier and the knowledge base before the first customer waits for them
        agent = app.state.services.agent
        knowledge = getattr(agent, "knowledge", None)
        if callable(knowledge):
            knowledge().search("电费怎么交")  # the embedder's tokenizer loads on the first query
    uvicorn.run(app, host=host, port=port, log_config=None, log_level=log_level,
                access_log=False, timeout_graceful_shutdown=5)
