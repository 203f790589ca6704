"""The delivery policy (`channels/notify/policy.yaml`): quiet hours, the daily cap, retries, the
opt-in kinds and the provider templates, validated at load (a bad file is refused naming the field).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from billing_core.db.operations_models import NotificationChannel

POLICY_PATH = Path(__file__).with_name("policy.yaml")
_CHANNELS = {c.value for c in NotificationChannel}


class PolicyError(ValueError):
    """The delivery policy file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class KindRule:
    opt_in: bool
    subject: str


@dataclass(frozen=True)
class TemplateRule:
    wechat_template_id: str
    wechat_fields: dict[str, str]
    sms_template_code: str
    sms_fields: dict[str, str]


@dataclass(frozen=True)
class DeliveryPolicy:
    version: int
    effective_from: date
    source: str
    timezone: ZoneInfo
    quiet_start: time
    quiet_end: time
    quiet_channels: frozenset[str]
    daily_cap: int
    max_attempts: int
    base_delay: float
    max_delay: float
    lease_seconds: float
    kinds: dict[str, KindRule]
    templates: dict[str, TemplateRule]

    def in_quiet_hours(self, channel: str, now: datetime) -> datetime | None:
        """When `channel` is quiet at `now`: the (UTC) moment the window ends; else None."""
        if channel not in self.quiet_channels:
            return None
        local = now.astimezone(self.timezone)
        start = local.replace(hour=self.quiet_start.hour, minute=self.quiet_start.minute, second=0, microsecond=0)
        end = local.replace(hour=self.quiet_end.hour, minute=self.quiet_end.minute, second=0, microsecond=0)
        if self.quiet_start <= self.quiet_end:  # same-day window
            return end.astimezone(now.tzinfo) if start <= local < end else None
        if local >= start:  # evening part: ends tomorrow morning
            return (end + timedelta(days=1)).astimezone(now.tzinfo)
        if local < end:  # morning part
            return end.astimezone(now.tzinfo)
        return None

    def day_start(self, now: datetime) -> datetime:
        """Local midnight of `now`'s day (the daily cap's window), as an aware datetime."""
        local = now.astimezone(self.timezone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)

    def next_day(self, now: datetime) -> datetime:
        return (self.day_start(now).astimezone(self.timezone) + timedelta(days=1)).replace(
            hour=0, minute=0).astimezone(now.tzinfo)

    def backoff(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `attempts`-th failed attempt: base·2^(n-1), capped, ±10 %."""
        delay = min(self.base_delay * (2 ** max(attempts - 1, 0)), self.max_delay)
        return delay * (0.9 + 0.2 * (rng or random).random())

    def needs_opt_in(self, kind: str) -> bool:
        rule = self.kinds.get(kind)
        return rule.opt_in if rule else False

    def subject(self, kind: str) -> str:
        rule = self.kinds.get(kind)
        return rule.subject if rule else "供电服务通知"


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data or data[key] is None:
        raise PolicyError(f"{where}{key}: 缺少此项")
    return data[key]


def _positive(value: Any, field: str, *, integer: bool = True) -> Any:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value <= 0:
        raise PolicyError(f"{field}: 应为正{'整' if integer else ''}数，收到 {value!r}")
    return value


def _clock(value: Any, field: str) -> time:
    try:
        hours, minutes = str(value).split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise PolicyError(f"{field}: 应为 HH:MM，收到 {value!r}") from exc


def _fields(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not value or not all(isinstance(v, str) for v in value.values()):
        raise PolicyError(f"{field}: 应为 变量名: 来源字段 的非空映射")
    return {str(k): v for k, v in value.items()}


def parse_policy(data: Any, name: str = "policy.yaml") -> DeliveryPolicy:
    """Validate the parsed YAML; every error names `name` and the field."""
    try:
        return _parse(data)
    except PolicyError as exc:
        raise PolicyError(f"{name}: {exc}") from None


def _parse(data: Any) -> DeliveryPolicy:
    if not isinstance(data, dict):
        raise PolicyError("应为映射")
    try:
        zone = ZoneInfo(str(_require(data, "timezone", "")))
    except ZoneInfoNotFoundError as exc:
        raise PolicyError(f"timezone: 未知时区 {data['timezone']!r}") from exc
    effective = _require(data, "effective_from", "")
    if not isinstance(effective, date):
        raise PolicyError(f"effective_from: 应为日期 YYYY-MM-DD，收到 {effective!r}")
    quiet = _require(data, "quiet_hours", "")
    channels = _require(quiet, "channels", "quiet_hours.")
    if not isinstance(channels, list) or not set(channels) <= _CHANNELS:
        raise PolicyError(f"quiet_hours.channels: 应为 {sorted(_CHANNELS)} 中的若干项，收到 {channels!r}")
    retry = _require(data, "retry", "")
    kinds = {}
    for kind, rule in (_require(data, "kinds", "") or {}).items():
        if not isinstance(rule, dict) or not isinstance(rule.get("opt_in"), bool):
            raise PolicyError(f"kinds.{kind}.opt_in: 应为 true 或 false")
        kinds[str(kind)] = KindRule(opt_in=rule["opt_in"], subject=str(rule.get("subject") or "供电服务通知"))
    templates = {}
    for template, rule in (_require(data, "templates", "") or {}).items():
        where = f"templates.{template}."
        if not isinstance(rule, dict):
            raise PolicyError(f"templates.{template}: 应为映射")
        templates[str(template)] = TemplateRule(
            wechat_template_id=str(_require(rule, "wechat_template_id", where)),
            wechat_fields=_fields(_require(rule, "wechat_fields", where), where + "wechat_fields"),
            sms_template_code=str(_require(rule, "sms_template_code", where)),
            sms_fields=_fields(_require(rule, "sms_fields", where), where + "sms_fields"),
        )
    return DeliveryPolicy(
        version=_positive(_require(data, "version", ""), "version"),
        effective_from=effective,
        source=str(_require(data, "source", "")),
        timezone=zone,
        quiet_start=_clock(_require(quiet, "start", "quiet_hours."), "quiet_hours.start"),
        quiet_end=_clock(_require(quiet, "end", "quiet_hours."), "quiet_hours.end"),
        quiet_channels=frozenset(channels),
        daily_cap=_positive(_require(data, "daily_cap_per_customer", ""), "daily_cap_per_customer"),
        max_attempts=_positive(_require(retry, "max_attempts", "retry."), "retry.max_attempts"),
        base_delay=_positive(_require(retry, "base_delay_seconds", "retry."), "retry.base_delay_seconds", integer=False),
        max_delay=_positive(_require(retry, "max_delay_seconds", "retry."), "retry.max_delay_seconds", integer=False),
        lease_seconds=_positive(_require(retry, "lease_seconds", "retry."), "retry.lease_seconds", integer=False),
        kinds=kinds,
        templates=templates,
    )


def load_policy(path: Path | str | None = None) -> DeliveryPolicy:
    """The policy at `path` (default: the shipped file, read once)."""
    if path is None:
        return _shipped()
    return _read(Path(path))


def _read(path: Path) -> DeliveryPolicy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path.name}: 不是有效的 YAML（{exc}）") from None
    return parse_policy(data, path.name)


@lru_cache(maxsize=1)
def _shipped() -> DeliveryPolicy:
    return _read(POLICY_PATH)
