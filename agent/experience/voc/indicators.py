"""The guide's four kinds of customer-experience indicators (§8.8: 交互 / 感知 / 行为 / 结果), as data.

`data/indicators.yaml` lists each indicator with its kind, formula, numerator, denominator and the
records behind it; this module computes each from the database for a period and returns the
numerator and denominator with the value, so every figure can be checked by hand (a figure with
nothing to divide by is None, 「无数据」, never a made-up 0 %).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.experience.negative.models import NegativeExperience
from agent.experience.voc.needs import needs
from agent.experience.voc.periods import aware, period_bounds
from agent.experience.yaml_policy import load_validated
from agent.models import ConversationRecord, Outcome, TurnRecord
from agent.records import first_contact_resolution
from billing_core.db.models import Customer, WorkOrder, WorkOrderKind
from billing_core.operations.kpi_store import period_kpis

INDICATORS_FILE = Path(__file__).with_name("data") / "indicators.yaml"
Kind = Literal["interaction", "perception", "behaviour", "result"]
KIND_CN: dict[str, str] = {"interaction": "交互指标", "perception": "感知指标", "behaviour": "行为指标", "result": "结果指标"}


class IndicatorError(ValueError):
    """A malformed indicators file (the message names the file and the field)."""


class IndicatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(min_length=1)
    kind: Kind
    name: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    formula: str = Field(min_length=1)
    numerator: str = Field(min_length=1)
    denominator: str = Field(min_length=1)
    records: str = Field(min_length=1)
    guide_example: str = Field(min_length=1)


class IndicatorPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str = Field(min_length=1)
    effective_from: date
    source: str = Field(min_length=1)
    indicators: list[IndicatorSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_and_complete(self) -> IndicatorPolicy:
        seen = set()
        for index, spec in enumerate(self.indicators):
            if spec.code not in COMPUTATIONS:
                raise ValueError(f"indicators.{index}.code: no computation for {spec.code!r} "
                                 f"(known: {', '.join(sorted(COMPUTATIONS))})")
            if spec.code in seen:
                raise ValueError(f"indicators.{index}.code: {spec.code!r} listed twice")
            seen.add(spec.code)
        missing = {"interaction", "perception", "behaviour", "result"} - {s.kind for s in self.indicators}
        if missing:
            raise ValueError(f"indicators: no indicator of kind {', '.join(sorted(missing))} (the guide names four)")
        return self


def load_indicators(path: Path = INDICATORS_FILE) -> IndicatorPolicy:
    return load_validated(path, IndicatorPolicy, IndicatorError)


@lru_cache(maxsize=1)
def default_indicators() -> IndicatorPolicy:
    return load_indicators()


@dataclass(frozen=True)
class IndicatorValue:
    code: str
    kind: str
    name: str
    unit: str
    value: Decimal | None
    numerator: Decimal
    denominator: Decimal
    formula: str
    numerator_label: str
    denominator_label: str
    records: str
    guide_example: str

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "kind": self.kind, "kind_name": KIND_CN[self.kind], "name": self.name,
                "unit": self.unit, "value": None if self.value is None else str(self.value),
                "numerator": str(self.numerator), "denominator": str(self.denominator), "formula": self.formula,
                "numerator_label": self.numerator_label, "denominator_label": self.denominator_label,
                "records": self.records, "guide_example": self.guide_example}


class _Period:
    """The period's records, read once and shared by the computations."""

    def __init__(self, session: Session, period: str, now: datetime) -> None:
        self.session, self.period, self.now = session, period, now
        self.start, self.end = period_bounds(period)
        self.conversations = list(session.scalars(select(ConversationRecord).where(
            ConversationRecord.started_at >= self.start, ConversationRecord.started_at < self.end)))
        ids = [c.id for c in self.conversations]
        self.turns, self.latency_ms = 0, 0
        for offset in range(0, len(ids), 500):
            count, total = session.execute(select(func.count(TurnRecord.id), func.coalesce(func.sum(TurnRecord.latency_ms), 0))
                                           .where(TurnRecord.conversation_pk.in_(ids[offset:offset + 500]))).one()
            self.turns, self.latency_ms = self.turns + int(count), self.latency_ms + int(total)
        self._billing: dict[str, tuple[Decimal, Decimal]] | None = None

    def billing(self, code: str) -> tuple[Decimal, Decimal]:
        if self._billing is None:
            self._billing = {v.code: (Decimal(v.numerator), Decimal(v.denominator)) for v in period_kpis(self.session, self.period)}
        return self._billing[code]

    def outcome_share(self, outcome: Outcome) -> tuple[Decimal, Decimal]:
        return Decimal(sum(1 for c in self.conversations if c.outcome == outcome)), Decimal(len(self.conversations))


Fraction = tuple[Decimal, Decimal, Decimal]  # numerator, denominator, scale


def _needs_on_time(p: _Period) -> Fraction:
    opened = [n for n in needs(p.session, p.now, include_closed=True) if p.start <= aware(n.opened_at) < p.end]
    return Decimal(sum(1 for n in opened if not n.overdue)), Decimal(len(opened)), Decimal(100)


def _satisfaction(p: _Period) -> Fraction:
    rated = [c.csat_score for c in p.conversations if c.csat_score is not None]
    return Decimal(sum(1 for s in rated if s >= 4)), Decimal(len(rated)), Decimal(100)


def _negative(p: _Period) -> Fraction:
    count = p.session.scalar(select(func.count()).select_from(NegativeExperience).where(
        NegativeExperience.opened_at >= p.start, NegativeExperience.opened_at < p.end)) or 0
    return Decimal(count), Decimal(len(p.conversations)), Decimal(100)


def _fcr(p: _Period) -> Fraction:
    fcr = first_contact_resolution(p.session, p.start, p.end, as_of=p.now)
    return Decimal(fcr.resolved_first), Decimal(fcr.needs), Decimal(100)


def _complaints(p: _Period) -> Fraction:
    complaints = p.session.scalar(select(func.count()).select_from(WorkOrder).where(
        WorkOrder.kind == WorkOrderKind.COMPLAINT, WorkOrder.created_at >= p.start, WorkOrder.created_at < p.end)) or 0
    customers = p.session.scalar(select(func.count()).select_from(Customer)) or 0
    return Decimal(complaints), Decimal(customers), Decimal(10000)


def _billing(code: str) -> Callable[[_Period], Fraction]:
    return lambda p: (*p.billing(code), Decimal(100))


COMPUTATIONS: dict[str, Callable[[_Period], Fraction]] = {
    "response_time": lambda p: (Decimal(p.latency_ms) / 1000, Decimal(p.turns), Decimal(1)),
    "needs_on_time": _needs_on_time,
    "turns_per_conversation": lambda p: (Decimal(p.turns), Decimal(len(p.conversations)), Decimal(1)),
    "satisfaction": _satisfaction,
    "negative_experience_rate": _negative,
    "billing_error_rate": _billing("billing_error_rate"),
    "self_service_rate": lambda p: (*p.outcome_share(Outcome.RESOLVED), Decimal(100)),
    "handoff_rate": lambda p: (*p.outcome_share(Outcome.TRANSFERRED), Decimal(100)),
    "electronic_settlement_rate": _billing("electronic_settlement_rate"),
    "first_contact_resolution": _fcr,
    "complaint_rate": _complaints,
    "collection_rate": _billing("collection_rate"),
}


def indicator_values(session: Session, period: str, now: datetime | None = None,
                     policy: IndicatorPolicy | None = None) -> list[IndicatorValue]:
    """Every indicator of the policy for `period`, in the file's order."""
    policy = policy or default_indicators()
    records = _Period(session, period, now or datetime.now(UTC))
    values = []
    for spec in policy.indicators:
        numerator, denominator, scale = COMPUTATIONS[spec.code](records)
        value = None if denominator == 0 else (numerator * scale / denominator).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        values.append(IndicatorValue(spec.code, spec.kind, spec.name, spec.unit, value,
                                     numerator, denominator, spec.formula, spec.numerator, spec.denominator, spec.records,
                                     spec.guide_example))
    return values


def format_indicators(period: str, values: list[IndicatorValue]) -> str:
    policy = default_indicators()
    lines = [f"客户体验测量指标（导则 §8.8） 账期 {period}    [{policy.version}]"]
    for kind, title in KIND_CN.items():
        lines += ["", title]
        for v in values:
            if v.kind == kind:
                shown = "无数据" if v.value is None else f"{v.value}{v.unit}"
                lines.append(f"  {v.name:<10}{shown:>12}  = {v.numerator_label} {v.numerator} / "
                             f"{v.denominator_label} {v.denominator}    [{v.records}]")
    return "\n".join(lines)
