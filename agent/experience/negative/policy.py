"""The policy of remedies for negative experiences (`data/remedies.yaml`), validated at load.

Which remedy each cause gets, and the promised time of a call-back or a fee review, are service
commitments: they live in a dated data file, not in code, and a malformed file is refused with
the file and the field named.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.experience.yaml_policy import load_validated

POLICY_FILE = Path(__file__).with_name("data") / "remedies.yaml"
# The causes the detectors report; the policy must name a remedy for every one of them.
CAUSES = ("negative_emotion", "repeat_contact", "low_csat", "complaint", "identity_locked", "handoff_unanswered")
REMEDIES = ("priority_handling", "call_back", "fee_review")


class RemedyPolicyError(ValueError):
    """The remedies file is malformed; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Remedy(_Strict):
    label: str = Field(min_length=1)
    within_hours: int | None = Field(default=None, ge=1, le=240)  # a call-back or review promised within


class Cause(_Strict):
    label: str = Field(min_length=1)
    remedy: str
    by_complaint_category: dict[str, str] = {}


class RemedyPolicy(_Strict):
    version: int
    effective_from: date
    source: str = Field(min_length=1)
    handoff_unanswered_minutes: int = Field(ge=1, le=24 * 60)
    remedies: dict[str, Remedy]
    causes: dict[str, Cause]

    @model_validator(mode="after")
    def _complete(self) -> RemedyPolicy:
        for name in self.remedies:
            if name not in REMEDIES:
                raise ValueError(f"remedies.{name}: unknown remedy (known: {', '.join(REMEDIES)})")
        for name in REMEDIES:
            if name not in self.remedies:
                raise ValueError(f"remedies.{name}: missing")
        for name in CAUSES:
            if name not in self.causes:
                raise ValueError(f"causes.{name}: missing")
        for name, cause in self.causes.items():
            if name not in CAUSES:
                raise ValueError(f"causes.{name}: unknown cause (known: {', '.join(CAUSES)})")
            for remedy in (cause.remedy, *cause.by_complaint_category.values()):
                if remedy not in self.remedies:
                    raise ValueError(f"causes.{name}.remedy: unknown remedy {remedy!r}")
        for name in ("call_back", "fee_review"):
            if self.remedies[name].within_hours is None:
                raise ValueError(f"remedies.{name}.within_hours: required")
        return self

    def remedy_for(self, cause: str, complaint_category: str | None = None) -> str:
        spec = self.causes[cause]
        if complaint_category and complaint_category in spec.by_complaint_category:
            return spec.by_complaint_category[complaint_category]
        return spec.remedy

    def cause_label(self, cause: str) -> str:
        spec = self.causes.get(cause)
        return spec.label if spec is not None else cause


def load_remedy_policy(path: Path = POLICY_FILE) -> RemedyPolicy:
    """Read and validate a remedies file."""
    return load_validated(path, RemedyPolicy, RemedyPolicyError)


@lru_cache(maxsize=1)
def remedy_policy() -> RemedyPolicy:
    return load_remedy_policy()
