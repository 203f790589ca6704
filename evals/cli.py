"""`powerdesk eval`: evaluation commands; each eval keeps its command in its own module."""

from __future__ import annotations

import typer

from evals.retrieval.command import retrieval
from evals.scenario_command import run

app = typer.Typer(help="评测：检索质量等。", no_args_is_help=True)


@app.callback()
def evals() -> None:
    """评测命令组（保持为命令组，方便以后添加其他评测）。"""


app.command("retrieval")(retrieval)
app.command("run")(run)
