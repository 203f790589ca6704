"""`powerdesk chat`: talk to the agent in a terminal, on the demo database.

Uses the same `Agent.handle` as every channel (channel "cli"), so what works here works on the
web and WeChat. `--account` only pre-fills the 户号 as if typed; verification still asks for
the phone or ID tail, because the terminal is not a trusted identity.
"""

from __future__ import annotations

import re
import uuid

import typer

from billing_core.cli.schema_check import ensure_schema

app = typer.Typer(help="在终端与电费智能客服对话（演示数据库）。")


@app.callback(invoke_without_command=True)
def chat(account: str | None = typer.Option(None, "--account", help="12位户号（仍需核实手机或身份证后4位）"),
         brain: str = typer.Option("local", "--brain",
                                   help="local（本地，默认）或 llm（需配置 POWERDESK_LLM_*）")) -> None:
    """开始一段对话；输入“退出”结束。"""
    if brain not in ("local", "llm"):
        typer.echo(f"--brain：只能是 local 或 llm，收到 {brain!r}", err=True)
        raise typer.Exit(2)
    if account is not None and not re.fullmatch(r"\d{12}", account.strip()):
        typer.echo("--account：户号应为12位数字", err=True)
        raise typer.Exit(2)
    ensure_schema("billing", "tools", "agent")  # a terminal conversation: no channel tables
    from agent.agent import Agent
    from agent.llm_brain import LLMSettings

    if brain == "llm" and LLMSettings.from_env() is None:
        typer.echo("--brain llm：未配置 POWERDESK_LLM_BASE_URL，改用本地大脑。", err=True)
        brain = "local"
    agent = Agent(brain=brain)
    conversation_id = f"cli-{uuid.uuid4().hex[:12]}"
    typer.echo("电费智能客服（输入“退出”结束）")
    first = f"我的户号是{account.strip()}" if account else None
    while True:
        if first is not None:
            text, first = first, None
            typer.echo(f"您：{text}")
        else:
            try:
                text = input("您：").strip()
            except (EOFError, KeyboardInterrupt):
                text = "退出"
        if not text:
            continue
        if text in ("退出", "exit", "quit"):
            agent.end(conversation_id)
            typer.echo("客服：再见！")
            return
        reply = agent.handle(conversation_id, "cli", text)
        typer.echo(f"客服：{reply.text}")
        for citation in reply.citations:
            typer.echo(f"    出处：{citation.get('citation') or citation.get('title')}")
        if reply.closed:
            return
