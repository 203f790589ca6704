"""The classification policy (`classification.yaml`): classes, their criteria, 服务责任单位 and
service standards, and the differentiated-service rules.

Validated at load: a malformed file is refused with `ClassificationPolicyError` naming the file and
the field, so a typo never silently turns a class off.
"""

from __future__ import annotations

import os
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

POLICY_FILE = Path(__file__).with_name("classification.yaml")

# What a derived class's criteria may test: the per-customer features `agent.experience.features`
# computes (name -> Chinese label, for descriptions).
FEATURES: dict[str, str] = {
    "capacity_kva": "受电容量（千伏安）",
    "annual_kwh": "近12个月用电量（千瓦时）",
    "overdue_bills": "逾期未缴账单数",
    "late_payments_12m": "近12个月逾期缴费次数",
    "contacts_12m": "近12个月来电次数",
    "contacts_90d": "近90天来电次数",
    "repeat_contacts_12m": "近12个月重复来电次数",
    "complaints_12m": "近12个月投诉次数",
    "disputes_12m": "近12个月电费异议次数",
    "low_csat_12m": "近12个月不满意评价次数",
    "handoffs_12m": "近12个月转人工次数",
}


class ClassificationPolicyError(ValueError):
    """The policy file is malformed; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    feature: str
    min: float

    @model_validator(mode="after")
    def _known(self) -> Criterion:
        if self.feature not in FEATURES:
            raise ValueError(f"feature: unknown feature {self.feature!r} (known: {', '.join(FEATURES)})")
        return self


class ServiceStandard(_Strict):
    standard: str = Field(min_length=2)  # the service standard in words, shown to staff
    complaint_contact_hours: int | None = Field(default=None, ge=1, le=72)
    complaint_queue: str | None = Field(default=None, min_length=2)  # the named 客户经理 queue
    offer_person_first: bool = False  # offered a person as soon as verified


class CustomerClass(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    name: str = Field(min_length=2)
    group: str = Field(min_length=2)
    basis: Literal["staff", "derived"]
    criteria_text: str = Field(min_length=2)
    match: Literal["all", "any"] = "all"
    criteria: tuple[Criterion, ...] = ()
    responsible_unit: str = Field(min_length=2)
    service: ServiceStandard

    @model_validator(mode="after")
    def _criteria_fit_basis(self) -> CustomerClass:
        if self.basis == "derived" and not self.criteria:
            raise ValueError("criteria: a derived class needs at least one criterion")
        if self.basis == "staff" and self.criteria:
            raise ValueError("criteria: a staff-set class is not derived from data; remove its criteria")
        return self

    def matches(self, features: dict[str, float]) -> bool:
        """Whether a customer with these features is in this (derived) class."""
        hits = [float(features.get(c.feature) or 0) >= c.min for c in self.criteria]
        return bool(hits) and (all(hits) if self.match == "all" else any(hits))


class RepeatBillContact(_Strict):
    window_days: int = Field(ge=1, le=90)
    earlier_contacts_min: int = Field(ge=1, le=20)
    message: str = Field(min_length=4)


class PreferredChannel(_Strict):
    channels: tuple[str, ...] = Field(min_length=1)
    min_contacts: int = Field(ge=1, le=100)
    min_share: float = Field(gt=0, le=1)
    message: str = Field(min_length=4)


class Rules(_Strict):
    repeat_bill_contact: RepeatBillContact
    preferred_channel: PreferredChannel


class ClassificationPolicy(_Strict):
    version: str = Field(min_length=3)
    effective_date: date
    source: str = Field(min_length=4)
    window_months: int = Field(ge=1, le=36)
    classes: tuple[CustomerClass, ...] = Field(min_length=1)
    rules: Rules

    @model_validator(mode="after")
    def _unique_codes(self) -> ClassificationPolicy:
        seen: set[str] = set()
        for item in self.classes:
            if item.code in seen:
                raise ValueError(f"classes: code {item.code!r} is listed twice")
            seen.add(item.code)
        return self

    def by_code(self, code: str) -> CustomerClass:
        for item in self.classes:
            if item.code == code:
                return item
        raise KeyError(f"class_code: no class {code!r} in {self.version}")

    @property
    def staff_classes(self) -> tuple[CustomerClass, ...]:
        return tuple(c for c in self.classes if c.basis == "staff")

    @property
    def derived_classes(self) -> tuple[CustomerClass, ...]:
        return tuple(c for c in self.classes if c.basis == "derived")

    def ordered(self, codes: list[str] | set[str]) -> list[CustomerClass]:
        """The classes of `codes` in precedence order (unknown codes, e.g. from an older version, dropped)."""
        wanted = set(codes)
        return [c for c in self.classes if c.code in wanted]


def parse_policy(raw: object, source: str) -> ClassificationPolicy:
    """Validate a parsed policy document; `source` names the file in the error."""
    try:
        return ClassificationPolicy.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        parts = [str(part) for part in first["loc"]]
        message = str(first["msg"]).removeprefix("Value error, ")
        named = re.match(r"^([a-z_]+): (.*)$", message, re.S)
        if named:  # a model-level check names its own field: append it to the location
            parts.append(named.group(1))
            message = named.group(2)
        raise ClassificationPolicyError(f"{source}: {'.'.join(parts) or 'document'}: {message}") from exc


def load_policy_file(path: Path) -> ClassificationPolicy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ClassificationPolicyError(f"{path}: document: not valid YAML ({exc})") from exc
    return parse_policy(raw, str(path))


@lru_cache(maxsize=4)
def _cached(path: str) -> ClassificationPolicy:
    return load_policy_file(Path(path))


def load_policy() -> ClassificationPolicy:
    """The policy in force: `POWERDESK_CX_POLICY` if set, else the shipped classification.yaml."""
    return _cached(os.environ.get("POWERDESK_CX_POLICY") or str(POLICY_FILE))
