"""The insights policy (forecast interval, anomaly thresholds, advice and market settings) as typed data.

Loaded from `insights/policy.yaml` so a billing centre tunes a threshold without a release; a
malformed file is refused with the file and the offending key named.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from billing_core.errors import BillingError

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForecastPolicy(_Strict):
    interval_level: Decimal = Field(gt=0, lt=1)
    history_days: int = Field(ge=60)
    weekday_window_days: int = Field(ge=14)
    min_daily_sd: Decimal = Field(gt=0)
    seasonal_prior_sd: Decimal = Field(gt=0)
    fallback_prior_sd: Decimal = Field(gt=0)
    min_known_share: Decimal = Field(gt=0, le=1)
    trend_months: int = Field(ge=1, le=6)
    trend_clip: tuple[Decimal, Decimal]
    kwh_step: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _clip_in_order(self) -> ForecastPolicy:
        low, high = self.trend_clip
        if not 0 < low <= 1 <= high:
            raise ValueError("trend_clip must be [low, high] with 0 < low <= 1 <= high")
        return self


class AnomalyPolicy(_Strict):
    window_days: int = Field(ge=14)
    min_window_days: int = Field(ge=7)
    day_z: Decimal = Field(gt=0)
    week_z: Decimal = Field(gt=0)
    min_excess_kwh: Decimal = Field(ge=0)
    zero_days: int = Field(ge=1)
    occupied_min_daily_kwh: Decimal = Field(ge=0)
    report_days: int = Field(ge=1)


class AdvicePolicy(_Strict):
    tou_shift_percents: list[Decimal] = Field(min_length=1)

    @model_validator(mode="after")
    def _percent_range(self) -> AdvicePolicy:
        if any(not 0 < p <= 100 for p in self.tou_shift_percents):
            raise ValueError("tou_shift_percents must each be in (0, 100]")
        return self


class MarketPolicy(_Strict):
    deviation_threshold: Decimal = Field(gt=0)
    usual_months: int = Field(ge=1, le=24)


class NoticesPolicy(_Strict):
    forecast_above_usual: Decimal = Field(gt=0)
    min_days_read: int = Field(ge=0, le=31)


class InsightsPolicy(_Strict):
    version: str
    effective_from: date
    source: str
    forecast: ForecastPolicy
    anomalies: AnomalyPolicy
    advice: AdvicePolicy
    market: MarketPolicy
    notices: NoticesPolicy


def parse_policy(data: object, origin: str = "<insights policy>") -> InsightsPolicy:
    """Validate a policy mapping; the error names the file and the key that is wrong."""
    try:
        return InsightsPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BillingError(f"{origin}: {where}: {first['msg']}", field=where) from None


def load_policy(path: Path | str | None = None) -> InsightsPolicy:
    """Load the policy file (the packaged default when `path` is None)."""
    if path is None:
        return _default_policy()
    path = Path(path)
    return parse_policy(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


@lru_cache(maxsize=1)
def _default_policy() -> InsightsPolicy:
    return parse_policy(yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8")), str(DEFAULT_POLICY_PATH))
