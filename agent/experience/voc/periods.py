"""A report period (YYYY-MM, China time) as UTC bounds, and privacy masking for report text
(numbers and the names of the customers concerned)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.experience.negative.report import mask_account
from knowledge_base.personal_numbers import mask_personal_numbers
from tools.verify_identity import mask_name

ZONE = ZoneInfo("Asia/Shanghai")
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# A 户号 is 12 digits (440100000001); longer runs are ID numbers, handled by mask_personal_numbers.
_ACCOUNT = re.compile(r"(?<![0-9０-９])([0-9]{12})(?![0-9０-９Xx])")


class PeriodError(ValueError):
    """A period that is not YYYY-MM."""


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a YYYY-MM month in China time, as UTC datetimes."""
    match = _PERIOD.match(period or "")
    if not match:
        raise PeriodError(f"period: 应为 YYYY-MM 格式（例如 2026-11），收到 {period!r}")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=ZONE)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=ZONE)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_period(period: str) -> str:
    period_bounds(period)
    year, month = int(period[:4]), int(period[5:])
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def mask_text(text: str, names: Iterable[str] = ()) -> str:
    """Phones, ID numbers, landlines, 户号 and the given customer names masked: what a report may
    show of a message (staff read reports; they must not learn who said what)."""
    masked = mask_personal_numbers(text, landlines=True)
    masked = _ACCOUNT.sub(lambda m: mask_account(m.group(1)), masked)
    for name in sorted({n for n in names if n and len(n) >= 2}, key=len, reverse=True):
        masked = masked.replace(name, mask_name(name))
    return masked


def aware(moment: datetime) -> datetime:
    """SQLite returns naive UTC datetimes; PostgreSQL aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def customer_names(session: Session, accounts: Iterable[str | None]) -> set[str]:
    """The names of these customers, so an example that quotes one is masked."""
    from billing_core.db.models import Customer  # read-only

    wanted = sorted({a for a in accounts if a})
    names: set[str] = set()
    for offset in range(0, len(wanted), 500):
        names.update(session.scalars(select(Customer.name).where(Customer.account_no.in_(wanted[offset:offset + 500]))))
    return names
