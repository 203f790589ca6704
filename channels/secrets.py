"""Server secrets of the channel layer: set by an environment variable, or generated once per site.

A demo set-up must not run on a constant anybody can read in the source (a WeChat token of
"powerdesk" lets anyone sign a callback as WeChat). When the variable is unset, a random value is
generated on first use and kept in `POWERDESK_VAR_DIR/secrets/<name>` (mode 0600,
`billing_core.settings.generated_secret`), so every `serve` worker of one machine shares it and a
restart keeps it. Several hosts must set the variable to the same value.
"""

from __future__ import annotations

import logging
import os

from billing_core.settings import generated_secret

log = logging.getLogger("powerdesk.channels")


def site_secret(env_name: str, file_name: str) -> str:
    """The value of `env_name`, or this site's generated secret `file_name` (created if missing)."""
    configured = os.environ.get(env_name, "").strip()
    if configured:
        return configured
    path, created = generated_secret(file_name)
    if created:
        log.warning("%s is not set: generated a secret in %s", env_name, path)
    return path.read_text(encoding="ascii").strip()
