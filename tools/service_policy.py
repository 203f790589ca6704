"""The service policy (`service_policy.yaml`): response commitments, identity limits, how to pay,
and the working-day arithmetic behind every promised date.

A promised date is computed here, never by the language model: "5个工作日内" from a Friday
afternoon is the next Friday, not next Wednesday.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

POLICY_PATH = Path(__file__).with_name("service_policy.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DisputePolicy(_Strict):
    contact_working_days: int = Field(ge=0)
    answer_working_days: int = Field(ge=0)
    refund_working_days: int = Field(ge=0)
    commitment: str


class ComplaintPolicy(_Strict):
    contact_hours: int = Field(ge=0)
    urgent_contact_hours: int = Field(ge=0)
    answer_working_days: int = Field(ge=0)
    commitment: str
    urgent_commitment: str


class VerificationPolicy(_Strict):
    max_failures_per_conversation: int = Field(ge=1)
    max_failures_per_account: int = Field(ge=1)
    account_window_minutes: int = Field(ge=1)
    account_lock_minutes: int = Field(ge=1)
    # A 户号 locked again within `account_lock_repeat_hours` of an earlier lock is locked twice as
    # long each time, up to `account_lock_max_minutes`: a patient guesser gets no fresh budget.
    account_lock_repeat_hours: int = Field(ge=1)
    account_lock_max_minutes: int = Field(ge=1)
    conversation_lock_hours: int = Field(ge=1)
    # One source (caller number, openid, web address) with wrong answers against this many
    # DIFFERENT 户号 within the window is locked: a spray that stays under the per-account and
    # per-conversation limits by trying account after account.
    max_accounts_per_source: int = Field(ge=2)
    source_window_minutes: int = Field(ge=1)
    source_lock_minutes: int = Field(ge=1)
    session_minutes: int = Field(ge=1)

    @model_validator(mode="after")
    def _max_not_below_first(self) -> VerificationPolicy:
        if self.account_lock_max_minutes < self.account_lock_minutes:
            raise ValueError("account_lock_max_minutes must not be below account_lock_minutes")
        return self


class PaymentChannelInfo(_Strict):
    code: str
    name: str
    how: str


class ServicePolicy(_Strict):
    version: str
    timezone: str
    holidays: list[date] = []
    extra_working_days: list[date] = []
    dispute: DisputePolicy
    complaint: ComplaintPolicy
    verification: VerificationPolicy
    payment_channels: list[PaymentChannelInfo]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """`start` moved forward by `days` working days, at the same local time of day.

        A request received on a non-working day starts counting from the next working day.
        """
        local = start.astimezone(self.zone)
        day = local.date()
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return datetime.combine(day, local.timetz())


def parse_policy(data: object, origin: str = "<policy>") -> ServicePolicy:
    try:
        return ServicePolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{origin}: {field}: {first['msg']}") from None


def load_policy(path: Path | str | None = None) -> ServicePolicy:
    """The policy at `path` (default: the shipped file, read once)."""
    if path is None:
        return _default_policy()
    return parse_policy(yaml.safe_load(Path(path).read_text(encoding="utf-8")), str(path))


@lru_cache(maxsize=1)
def _default_policy() -> ServicePolicy:
    return parse_policy(yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8")), str(POLICY_PATH))
