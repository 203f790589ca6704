"""The contract of `compute_bill`: what a bill request carries and what a computed bill returns.

These types are shared by the tariff engine, the billing cycle, the agent's tools and the
`powerdesk billing quote` command, so they change only with care. Money and energy are
`Decimal`; pydantic validation errors name the offending field (e.g. ``usage.total_kwh``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

_M = TypeVar("_M", bound=BaseModel)


def trusted(model: type[_M], values: dict[str, object]) -> _M:
    """Build one of these models from values the billing core produced itself, skipping validation.

    Equivalent to `model.model_construct(**values)` with every field given, at a third of the
    cost: the calculation builds a line per tier and day (the largest item in the compute_bill
    profile) and the read step a `DailyUsage` per customer-day. `values` must name every field.
    """
    instance = object.__new__(model)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


def trusted_all(model: type[_M], rows: Iterable[dict[str, object]]) -> list[_M]:
    """`trusted` for many rows in one loop, without a call per row (the read step builds a
    `DailyUsage` per customer-day: 31 million a month at a million customers)."""
    new, assign = object.__new__, object.__setattr__
    found: list[_M] = []
    append = found.append
    for values in rows:
        instance = new(model)
        assign(instance, "__dict__", values)
        assign(instance, "__pydantic_fields_set__", set(values))
        assign(instance, "__pydantic_extra__", None)
        assign(instance, "__pydantic_private__", None)
        append(instance)
    return found


class CustomerCategory(StrEnum):
    RESIDENTIAL = "residential"  # 居民生活用电
    CI_SINGLE = "ci_single"  # 工商业单一制
    CI_TWO_PART = "ci_two_part"  # 工商业两部制
    AGRICULTURAL = "agricultural"  # 农业生产用电


class HouseholdType(StrEnum):
    ORDINARY = "ordinary"  # 一户一表
    MANY_PERSON = "many_person"  # 一户多人口 (>=5 registered persons)
    SHARED_METER = "shared_meter"  # 合表用户, no tiers


class PurchaseMode(StrEnum):
    CATALOG = "catalog"  # 目录电价 (residential, agricultural)
    AGENCY = "agency"  # 电网企业代理购电
    MARKET = "market"  # 市场化交易用户 (energy price from the user's contract)


class BasicChargeMode(StrEnum):
    CAPACITY = "capacity"  # 按容量 元/kVA·月
    DEMAND = "demand"  # 按需量 元/kW·月


class TouPeriod(StrEnum):
    CRITICAL_PEAK = "critical_peak"  # 尖峰
    PEAK = "peak"  # 峰
    FLAT = "flat"  # 平
    VALLEY = "valley"  # 谷


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TariffAttributes(_Strict):
    """The customer attributes that select tariffs (a customer record's billing parameters)."""

    category: CustomerCategory
    region: str = "guangzhou"
    household_type: HouseholdType = HouseholdType.ORDINARY
    residential_tou: bool = False  # residents may opt in to time-of-use pricing
    voltage_level: str = "1-10kV"  # "<1kV", "1-10kV", "35kV", "110kV", "220kV+"
    purchase_mode: PurchaseMode = PurchaseMode.CATALOG
    capacity_kva: Decimal | None = Field(default=None, ge=0)
    basic_charge_mode: BasicChargeMode | None = None
    contracted_demand_kw: Decimal | None = Field(default=None, ge=0)
    pf_standard: Decimal | None = None  # 0.90 / 0.85 / 0.80, None = not assessed
    agency_price_multiplier: Decimal = Decimal("1")  # some users pay 1.5x the agency price


class TouUsage(_Strict):
    """kWh per time-of-use register. Critical-peak kWh are billed as peak outside its days."""

    critical_peak: Decimal = Field(default=Decimal("0"), ge=0)
    peak: Decimal = Field(default=Decimal("0"), ge=0)
    flat: Decimal = Field(default=Decimal("0"), ge=0)
    valley: Decimal = Field(default=Decimal("0"), ge=0)

    def total(self) -> Decimal:
        return self.critical_peak + self.peak + self.flat + self.valley


class DailyUsage(_Strict):
    """One day's energy, when known: lets the engine split a period exactly at a tariff change
    and bill critical-peak kWh on hot days (>=35 ℃) outside July–September."""

    day: date
    kwh: Decimal | None = Field(default=None, ge=0)
    tou: TouUsage | None = None


class Usage(_Strict):
    """Energy of the billing period: a total, per TOU period, or per day (the most exact)."""

    total_kwh: Decimal | None = Field(default=None, ge=0)
    tou: TouUsage | None = None
    daily: list[DailyUsage] | None = None
    reactive_kvarh: Decimal | None = Field(default=None, ge=0)
    max_demand_kw: Decimal | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_source_of_energy(self) -> Usage:
        if self.total_kwh is None and self.tou is None and not self.daily:
            raise ValueError("give total_kwh, tou or daily usage（需提供 total_kwh、tou 或 daily 之一）")
        return self


class PeriodPrices(_Strict):
    """One TOU period's per-kWh components as a bill prints them (元/kWh, funds excluded), at the
    precision the announcement publishes (0.642117, 0.0689). A component left out is derived
    from the flat price × the period's ratio as usual."""

    energy: Decimal | None = Field(default=None, ge=0)  # 电能量
    transmission: Decimal | None = Field(default=None, ge=0)  # 输配电
    line_loss: Decimal | None = Field(default=None, ge=0)  # 上网环节线损
    system_operation: Decimal | None = None  # 系统运行 (may be negative)


class InlinePrices(_Strict):
    """Prices given with the request: a market user's contract, the figures printed on a real
    bill (from the month's agency-purchase announcement), or a what-if quote.

    Each overrides the tariff data's figure; what is not given still comes from tariff data.
    """

    energy_price: Decimal | None = Field(default=None, ge=0)  # 元/kWh, flat-period base
    market_allocation_price: Decimal | None = None  # 市场化分摊 元/kWh (may be negative)
    market_allocation_amount: Decimal | None = None  # 市场化分摊 as the amount a bill/announcement gives, 元
    periods: dict[TouPeriod, PeriodPrices] | None = None  # per TOU period, used as given

    @model_validator(mode="after")
    def _one_allocation(self) -> InlinePrices:
        if self.market_allocation_price is not None and self.market_allocation_amount is not None:
            raise ValueError("give market_allocation_price or market_allocation_amount, not both"
                             "（市场化分摊只能按单价或按金额给出其一）")
        return self


class BillRequest(_Strict):
    """Everything `compute_bill` needs. The period is inclusive of both ends."""

    account_no: str | None = None
    attributes: TariffAttributes
    period_start: date
    period_end: date
    usage: Usage
    prices: InlinePrices | None = None
    back_charge_kwh: Decimal = Decimal("0")  # 退补电量 (+ back charge, − refund), billed at this period's price

    @model_validator(mode="after")
    def _period_in_order(self) -> BillRequest:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start（结束日期早于开始日期）")
        return self


LATE_FEE_LINE_CODE = "late_fee"  # 违约金 of an earlier overdue bill: not energy, never in tiers or PF


class LineItem(_Strict):
    """One line of a bill, enough to explain it without inventing anything."""

    code: str  # stable machine name, e.g. "tier_1", "energy_peak", "basic_demand", "pf_adjustment", "late_fee"
    name: str  # Chinese label shown on the bill, e.g. 「第一档电费」
    quantity: Decimal  # kWh, kVA, kW, or the base amount for a percentage line
    unit: str  # "kWh", "kVA·月", "kW·月", "元", "%"
    unit_price: Decimal  # 元 per unit, or the percentage as a fraction for PF lines
    amount: Decimal  # rounded half-up to the fen
    tariff_version: str  # e.g. "gd-residential-tiers@2017-07-01"
    source: str  # the policy document, e.g. 「粤发改价格〔2017〕498号」
    explanation: str  # one plain Chinese sentence
    period_start: date | None = None  # set when the line covers part of the period (a split)
    period_end: date | None = None


class ComputedBill(_Strict):
    """A computed bill: lines, their total, and notes such as a prorated tariff change."""

    account_no: str | None
    period_start: date
    period_end: date
    total_kwh: Decimal
    lines: list[LineItem]
    total: Decimal
    rounding: str = "每行金额按四舍五入保留到分，合计为各行之和"
    notes: list[str] = []
    tariff_versions: list[str] = []
    # 「version field：note」 of each unconfirmed tariff figure the lines used; reported by the computation,
    # not stored with a bill (its notes keep the version-level caveat)
    unconfirmed_figures: list[str] = []
