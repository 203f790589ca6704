"""Server secrets of the channel layer: set by an environment variable, or generated once per site.

A demo set-up must not run on a constant anybody can read in the source (a WeChat token of
"powerdesk" lets anyone sign a callback as WeChat). When the variable is unset, a random value is
generated on first use and kept in `POWERDESK_VAR_DIR/secrets/<name>` (mode 0600), so every
`serve` worker of one machine shares it and a restart keeps it. Several hosts must set the
variable to the same value.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("powerdesk.channels")

SECRET_BYTES = 32  # 256 bits


def secrets_dir() -> Path:
    from billing_core.settings import var_dir

    return var_dir() / "secrets"


def site_secret(env_name: str, file_name: str) -> str:
    """The value of `env_name`, or this site's generated secret `file_name` (created if missing)."""
    configured = os.environ.get(env_name, "").strip()
    if configured:
        return configured
    path = secrets_dir() / file_name
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written whole to a temporary file, then linked into place: a reader never sees a partial
    # file, and of two workers starting at once the first link wins and both use its value.
    temporary = path.with_name(f".{file_name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(SECRET_BYTES))
    try:
        os.link(temporary, path)
        log.warning("%s is not set: generated a secret in %s", env_name, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return _read(path)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()
