"""The billing-operations policy (thresholds, due days, dunning tiers, late-fee rates) as typed data.

Loaded from `operations/policy.yaml` so a billing centre changes a threshold without a release;
a malformed file fails loudly with the offending key named (pydantic's error path).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from billing_core.errors import BillingError

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsumptionChange(_Strict):
    vs_last_month: Decimal = Field(gt=0)
    vs_same_month_last_year: Decimal = Field(gt=0)
    min_base_kwh: Decimal = Field(ge=0)


class VerificationPolicy(_Strict):
    consumption_change: ConsumptionChange
    missing_days_allowed: int = Field(default=0, ge=0)
    zero_consumption_allowed_units: list[str] = []
    amount_tolerance: Decimal = Field(default=Decimal("0"), ge=0)
    kwh_price_bounds: dict[str, tuple[Decimal, Decimal]]
    negative_price_line_codes: list[str] = []
    tariff_price_tolerance: Decimal = Field(default=Decimal("0"), ge=0)

    @model_validator(mode="after")
    def _bounds_in_order(self) -> VerificationPolicy:
        for category, (low, high) in self.kwh_price_bounds.items():
            if low > high:
                raise ValueError(f"kwh_price_bounds.{category}: lower bound above upper bound")
        return self


class IssuePolicy(_Strict):
    due_days: int = Field(gt=0)
    notification_channels: list[str]
    bill_no_prefix: str = "GD"
    due_soon_days: int = Field(default=3, ge=1)  # 缴费提醒: this many days before the due date
    due_soon_channels: list[str] = ["sms", "wechat_template"]


class DunningTier(_Strict):
    code: str
    min_days_overdue: int = Field(ge=1)
    min_amount: Decimal = Field(ge=0)
    channels: list[str] = []
    work_order_kind: str | None = None


class DunningPolicy(_Strict):
    tiers: list[DunningTier]

    @model_validator(mode="after")
    def _tiers_escalate(self) -> DunningPolicy:
        days = [t.min_days_overdue for t in self.tiers]
        if days != sorted(days):
            raise ValueError("dunning.tiers must be listed from the mildest (fewest days) up")
        if len({t.code for t in self.tiers}) != len(self.tiers):
            raise ValueError("dunning.tiers: codes must be unique")
        return self


class LateFeeRate(_Strict):
    current_year: Decimal = Field(ge=0)
    across_years: Decimal = Field(ge=0)


class LateFeePolicy(_Strict):
    start: str = "day_after_due_date"
    daily_rate: dict[str, LateFeeRate]
    minimum_total: Decimal = Field(default=Decimal("0"), ge=0)


class ReconciliationPolicy(_Strict):
    currency: str = "CNY"
    settlement_lag_days: int = Field(default=1, ge=0)


class OperationsPolicy(_Strict):
    version: str
    verification: VerificationPolicy
    issue: IssuePolicy
    dunning: DunningPolicy
    late_fee: LateFeePolicy
    reconciliation: ReconciliationPolicy


def parse_policy(data: object, origin: str = "<policy>") -> OperationsPolicy:
    """Validate a policy mapping; the error names the key that is wrong."""
    try:
        return OperationsPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BillingError(f"{origin}: {first['msg']}", field=where) from None


def load_policy(path: Path | str | None = None) -> OperationsPolicy:
    """Load the policy file (the packaged default when `path` is None)."""
    if path is None:
        return _default_policy()
    path = Path(path)
    return parse_policy(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


@lru_cache(maxsize=1)
def _default_policy() -> OperationsPolicy:
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    return parse_policy(yaml.safe_load(text), str(DEFAULT_POLICY_PATH))
