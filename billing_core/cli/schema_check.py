"""The shared first step of every command that needs the database tables."""

from __future__ import annotations

import typer

from billing_core.errors import SchemaNotReadyError

SCHEMA_EXIT_CODE = 2  # like bad input: the operator must do something first, nothing was written


def ensure_schema(*chains: str, url: str | None = None) -> None:
    """Stop the command (exit 2, a message to stderr saying to run `powerdesk db upgrade`) unless
    the tables of `chains` (default: every layer's) are migrated to this code's newest revision."""
    from billing_core.db.schema import require_schema  # Alembic loads only for commands that use it

    try:
        require_schema(url, chains or None)
    except SchemaNotReadyError as exc:
        typer.echo(f"错误：{exc}", err=True)
        raise typer.Exit(SCHEMA_EXIT_CODE) from exc
