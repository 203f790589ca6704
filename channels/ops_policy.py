"""The operations policy (`channels/ops_policy.yaml`): KPI targets and alert rules, read as data.

A file with an unknown KPI code, a missing threshold or a bad direction is refused with the
offending field named (`alerts[2].above`), before anything is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

POLICY_PATH = Path(__file__).with_name("ops_policy.yaml")
KPI_CODES = ("electronic_settlement_rate", "billing_error_rate", "review_rate", "issue_rate", "collection_rate",
             "withholding_rate", "auto_reconciliation_rate", "platform_fault_rate", "response_time",
             "handling_time", "first_contact_resolution", "satisfaction")
ALERT_KINDS = ("kpi", "turn_latency_p95", "chat_error_rate", "probe_stale")
SEVERITIES = ("warning", "critical")


class PolicyError(ValueError):
    """The policy file is not what this module accepts; the message names the field."""


@dataclass(frozen=True)
class Target:
    code: str
    target: Decimal
    better: str  # "higher" | "lower"

    def missed(self, value: Decimal) -> bool:
        return value < self.target if self.better == "higher" else value > self.target


@dataclass(frozen=True)
class AlertRule:
    rule: str
    kind: str
    severity: str
    message: str
    kpi: str | None = None
    channel: str = "all"
    min_denominator: Decimal = Decimal(1)
    above: Decimal | None = None
    window_minutes: int = 60
    min_turns: int = 1
    minutes: int = 10


@dataclass(frozen=True)
class OpsPolicy:
    targets: dict[str, Target]
    alerts: tuple[AlertRule, ...]


def _number(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise PolicyError(f"{field}: 应为数字，收到 {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise PolicyError(f"{field}: 应为数字，收到 {value!r}") from exc


def _whole(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PolicyError(f"{field}: 应为正整数，收到 {value!r}")
    return value


def parse_policy(data: Any) -> OpsPolicy:
    if not isinstance(data, dict):
        raise PolicyError("policy: 应为 targets / alerts 两节的映射")
    targets: dict[str, Target] = {}
    for code, entry in (data.get("targets") or {}).items():
        field = f"targets.{code}"
        if code not in KPI_CODES:
            raise PolicyError(f"{field}: 未知指标代码（可用：{', '.join(KPI_CODES)}）")
        if not isinstance(entry, dict):
            raise PolicyError(f"{field}: 应为 {{target, better}}")
        better = entry.get("better")
        if better not in ("higher", "lower"):
            raise PolicyError(f"{field}.better: 应为 higher 或 lower，收到 {better!r}")
        targets[code] = Target(code, _number(entry.get("target"), f"{field}.target"), better)
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for index, entry in enumerate(data.get("alerts") or []):
        field = f"alerts[{index}]"
        if not isinstance(entry, dict):
            raise PolicyError(f"{field}: 应为映射")
        name, kind = entry.get("rule"), entry.get("kind")
        if not isinstance(name, str) or not name or name in seen:
            raise PolicyError(f"{field}.rule: 应为不重复的规则名，收到 {name!r}")
        seen.add(name)
        if kind not in ALERT_KINDS:
            raise PolicyError(f"{field}.kind: 应为 {' / '.join(ALERT_KINDS)}，收到 {kind!r}")
        severity = entry.get("severity", "warning")
        if severity not in SEVERITIES:
            raise PolicyError(f"{field}.severity: 应为 warning 或 critical，收到 {severity!r}")
        message = entry.get("message")
        if not isinstance(message, str) or not message:
            raise PolicyError(f"{field}.message: 需要告警说明文字")
        options: dict[str, Any] = {}
        if kind == "kpi":
            kpi = entry.get("kpi")
            if kpi not in targets:
                raise PolicyError(f"{field}.kpi: 应为 targets 中已设目标的指标，收到 {kpi!r}")
            options["kpi"] = kpi
            options["channel"] = str(entry.get("channel", "all"))
            options["min_denominator"] = _number(entry.get("min_denominator", 1), f"{field}.min_denominator")
        if kind in ("turn_latency_p95", "chat_error_rate"):
            options["above"] = _number(entry.get("above"), f"{field}.above")
            options["window_minutes"] = _whole(entry.get("window_minutes", 60), f"{field}.window_minutes")
        if kind == "turn_latency_p95":
            options["min_turns"] = _whole(entry.get("min_turns", 1), f"{field}.min_turns")
        if kind == "probe_stale":
            options["minutes"] = _whole(entry.get("minutes", 10), f"{field}.minutes")
        rules.append(AlertRule(rule=name, kind=kind, severity=severity, message=message, **options))
    return OpsPolicy(targets=targets, alerts=tuple(rules))


@lru_cache(maxsize=4)
def load_policy(path: Path = POLICY_PATH) -> OpsPolicy:
    """The policy at `path` (default: the shipped file), parsed and checked once per process."""
    with path.open(encoding="utf-8") as handle:
        return parse_policy(yaml.safe_load(handle))
