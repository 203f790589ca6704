"""`powerdesk cx …`: customer-experience management commands (each area adds its own sub-commands)."""

from __future__ import annotations

import typer

app = typer.Typer(help="客户体验管理：客户分类、标签、画像、负面体验、客户之声与满意度报告。", no_args_is_help=True)


@app.callback()
def cx() -> None:
    """客户体验管理命令。"""
