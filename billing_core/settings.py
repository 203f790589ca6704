"""Billing-core settings from environment variables, with embedded defaults.

`POWERDESK_DATABASE_URL` defaults to a SQLite file under ./var/ so a fresh checkout runs
without any server; point it at PostgreSQL (postgresql+psycopg://...) in production.
"""

from __future__ import annotations

import os
from functools import lru_cache
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
    return _sqlite_url(os.environ.get("POWERDESK_VAR_DIR", str(DEFAULT_VAR_DIR)))


@lru_cache(maxsize=16)
def _sqlite_url(var_dir_setting: str) -> str:
    # Asked for on every database session: create the directory and resolve the path once per
    # setting, not per request (a mkdir and a realpath were ~2 % of a chat turn under load).
    path = Path(var_dir_setting)
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(path / 'powerdesk.db').resolve()}"
