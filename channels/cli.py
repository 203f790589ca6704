"""The `powerdesk` command: a root Typer app whose sub-commands each layer registers.

Sub-apps are declared as entry points in the `powerdesk.cli` group (see pyproject.toml), so
this module imports no layer above it; `evals` registers `eval`, and `channels` adds `serve` and `kpi`.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

app = typer.Typer(
    name="powerdesk",
    help="PowerDesk: AI customer service for an electricity utility's billing desk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register_subcommands() -> None:
    for entry in sorted(entry_points(group="powerdesk.cli"), key=lambda e: e.name):
        app.add_typer(entry.load(), name=entry.name)


def main() -> None:
    """Console-script entry point."""
    _register_subcommands()
    app()


if __name__ == "__main__":
    main()
