"""`powerdesk eval`: evaluation commands; each eval keeps its command in its own module."""

from __future__ import annotations

import typer

from evals.retrieval.command import retrieval

app = typer.Typer(help="评测：检索质量等。", no_args_is_help=True)
app.command("retrieval")(retrieval)
