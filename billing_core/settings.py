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


def generated_secret(name: str, directory: Path | None = None) -> tuple[Path, bool]:
    """This site's generated secret `name`: its file under `var_dir()/secrets/` (or `directory`), and
    whether this call created it.

    For a secret whose variable is unset (the channels' signing keys, the Rasa action token): a
    demo never runs on a constant from the source. The value (256 random bits) is written whole to
    a temporary file and linked into place (mode 0600), so no reader sees a partial file and of
    several processes starting at once the first link wins and all use its value.
    """
    import secrets

    folder = directory if directory is not None else var_dir() / "secrets"
    path = folder / name
    if path.exists():
        return path, False
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(32))
    try:
        os.link(temporary, path)
        created = True
    except FileExistsError:
        created = False
    finally:
        temporary.unlink()
    return path, created
