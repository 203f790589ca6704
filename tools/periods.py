"""The `period` argument shared by the billing tools: a month as 'YYYY-MM'."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_CN_PERIOD = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月?$")


def _period(value: str) -> str:
    value = value.strip()
    match = _CN_PERIOD.match(value)
    if match and 1 <= int(match.group(2)) <= 12:
        return f"{match.group(1)}-{int(match.group(2)):02d}"
    if not _PERIOD.match(value):
        raise ValueError("账单月份应写成 YYYY-MM，例如 2026-05")
    return value


Period = Annotated[str, AfterValidator(_period), Field(description="账单月份，格式 YYYY-MM，例如 2026-05")]
