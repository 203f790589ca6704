"""Billing-core settings from environment variables, with embedded defaults.

`POWERDESK_DATABASE_URL` defaults to a SQLite file under ./var/ so a fresh checkout runs
without any server; point it at PostgreSQL (postgresql+psycopg://...) in production.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_VAR_DIR = Path(os.environ.get("POWERDESK_VAR_DIR", "var"))


def var_dir() -> Path:
    """Directory for local state (SQLite file, Chroma store, reports); created on demand."""
    path = Path(os.environ.get("POWERDESK_VAR_DIR", str(DEFAULT_VAR_DIR)))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """The SQLAlchemy URL of the billing database."""
    url = os.environ.get("POWERDESK_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{(var_dir() / 'powerdesk.db').resolve()}"
