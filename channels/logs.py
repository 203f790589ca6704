"""Structured JSON logs with personal data masked.

Logs are read by more people than conversations are, so phone numbers and ID-card numbers
never reach them in full: every value of a formatted record goes through `mask_personal_data`
(the patterns of `knowledge_base.personal_numbers`, shared with the replies' guard).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from knowledge_base.personal_numbers import mask_personal_numbers


def mask_personal_data(text: str) -> str:
    """Mask ID-card numbers (keep region and last 4), mobiles (keep 3+4) and landlines."""
    return mask_personal_numbers(text, landlines=True)


def _masked(value: Any) -> Any:
    """`value` with personal numbers masked in every string (and number) it holds.

    Values are masked before JSON encoding, not the encoded line: an escape like the 'n' of a
    newline's \\n would sit right before a number and hide it from the ID pattern's boundary.
    """
    if isinstance(value, str):
        return mask_personal_data(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        text = str(value)
        masked = mask_personal_data(text)
        return value if masked == text else masked
    if isinstance(value, dict):
        return {_masked(str(key)): _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(item) for item in value]
    return mask_personal_data(str(value))


_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(_masked(entry), ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send the service's and uvicorn's logs to stderr as masked JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("powerdesk", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
