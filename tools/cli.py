"""`powerdesk rasa-actions`: serve the tools as a Rasa action server (rasa-sdk's own app)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Rasa 动作服务器：把账务工具以 rasa-sdk 动作提供给 Rasa。", invoke_without_command=True)


@app.callback()
def serve(
    port: int = typer.Option(5055, min=1, max=65535, help="监听端口（Rasa 默认 5055）"),
    host: str = typer.Option("127.0.0.1", help="监听地址"),
) -> None:
    """启动动作服务器：POST /webhook、GET /health、GET /actions。"""
    from billing_core.cli.schema_check import ensure_schema
    from billing_core.settings import database_url
    from tools.rasa_actions import TOKEN_ENV, action_token, create_action_app

    try:
        token, token_file = action_token()
    except ValueError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(2) from None
    ensure_schema("billing", "tools")
    application = create_action_app(token, database_url())
    typer.echo(f"Rasa 动作服务器：http://{host}:{port}/webhook（数据库 POWERDESK_DATABASE_URL）")
    where = f"文件 {token_file}" if token_file is not None else f"环境变量 {TOKEN_ENV}"
    typer.echo(f"调用令牌来自{where}；在 Rasa 的 endpoints.yml 中配置 "
               f"action_endpoint: {{url: http://{host}:{port}/webhook, token: <该令牌>}}")
    application.run(host=host, port=port, single_process=True, access_log=False, motd=False)
