"""Suite-wide isolation: local state goes to a temp directory, never to ./var."""

from __future__ import annotations

import os
import tempfile

# Set before any PowerDesk module reads settings; each pytest process gets its own var dir.
_VAR_DIR = tempfile.mkdtemp(prefix="powerdesk-test-var-")
os.environ["POWERDESK_VAR_DIR"] = _VAR_DIR
os.environ.pop("POWERDESK_DATABASE_URL", None)
os.environ.pop("POWERDESK_REDIS_URL", None)
os.environ.pop("POWERDESK_CHROMA_URL", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
