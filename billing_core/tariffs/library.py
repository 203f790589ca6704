"""The policy library (T/CI 1281 §8.5c): every tariff version from `billing_core/tariffs/`, by date.

Tariffs change by policy notice, so they live in YAML files (one file per version, each with
its effective dates and cited source) and code asks "which version of tariff X is in force on
day D". Files are validated when loaded, with errors naming the file and field, and the library
is loaded once per process because every bill asks it several questions.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from billing_core.errors import TariffDataError, TariffPeriodError, UnknownTariffError

TARIFF_DIR = Path(__file__).with_name("data")
TOU_PERIODS = ("critical_peak", "peak", "flat", "valley")
SUMMER = "summer"
NON_SUMMER = "non_summer"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- kind-specific data


class ResidentialTiers(_Data):
    """Tier prices (funds included) and monthly tier limits per household type and season."""

    kind: Literal["residential_tiers"]
    summer_months: frozenset[int]
    funds_included: Decimal
    prices: dict[Literal["tier_1", "tier_2", "tier_3", "shared_meter"], Decimal]
    limits: dict[Literal["ordinary", "many_person"], dict[Literal["summer", "non_summer"], tuple[int, int]]]

    @field_validator("summer_months")
    @classmethod
    def _months(cls, value: frozenset[int]) -> frozenset[int]:
        if not value or not all(1 <= m <= 12 for m in value):
            raise ValueError("months must be 1..12")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ResidentialTiers:
        missing = {"tier_1", "tier_2", "tier_3", "shared_meter"} - set(self.prices)
        if missing:
            raise ValueError(f"prices: missing {sorted(missing)}")
        for household, seasons in self.limits.items():
            for season in (SUMMER, NON_SUMMER):
                if season not in seasons:
                    raise ValueError(f"limits.{household}: missing {season}")
                low, high = seasons[season]
                if not 0 < low < high:
                    raise ValueError(f"limits.{household}.{season}: need 0 < tier 1 limit < tier 2 limit")
        if set(self.limits) != {"ordinary", "many_person"}:
            raise ValueError("limits: need ordinary and many_person")
        return self

    def season(self, month: int) -> str:
        return SUMMER if month in self.summer_months else NON_SUMMER


class ResidentialTou(_Data):
    """Residential TOU: tier-1 prices per period, then add-ons for kWh above the tier limits."""

    kind: Literal["residential_tou"]
    tiers_tariff: str
    funds_included: Decimal
    ratios: dict[Literal["peak", "flat", "valley"], Decimal]
    tier_1_prices: dict[Literal["peak", "flat", "valley"], Decimal]
    tier_addons: dict[Literal["tier_2", "tier_3"], Decimal]

    @model_validator(mode="after")
    def _complete(self) -> ResidentialTou:
        for name in ("ratios", "tier_1_prices"):
            if set(getattr(self, name)) != {"peak", "flat", "valley"}:
                raise ValueError(f"{name}: need peak, flat and valley")
        if set(self.tier_addons) != {"tier_2", "tier_3"}:
            raise ValueError("tier_addons: need tier_2 and tier_3")
        return self


class CriticalPeak(_Data):
    multiplier_on_peak: Decimal = Field(gt=0)
    months: frozenset[int]
    hours: list[tuple[int, int]]
    hot_day_threshold_c: Decimal
    hot_days_tariff: str


class CiTou(_Data):
    """C&I TOU ratios (applied to every per-kWh component), hours and critical-peak rule."""

    kind: Literal["ci_tou"]
    ratios: dict[Literal["peak", "flat", "valley"], Decimal]
    critical_peak: CriticalPeak | None
    price_rounding_places: int = Field(ge=0, le=8)
    periods: dict[Literal["peak", "flat", "valley"], list[tuple[int, int]]]

    @model_validator(mode="after")
    def _hours_cover_the_day(self) -> CiTou:
        if set(self.ratios) != {"peak", "flat", "valley"}:
            raise ValueError("ratios: need peak, flat and valley")
        hours: list[int] = []
        for ranges in self.periods.values():
            for start, end in ranges:
                if not 0 <= start < end <= 24:
                    raise ValueError(f"periods: bad hour range [{start}, {end}]")
                hours.extend(range(start, end))
        if sorted(hours) != list(range(24)):
            raise ValueError("periods: the hour ranges must cover 0-24 exactly once")
        return self


class HotDay(_Data):
    day: date
    max_temp_c: Decimal


class HotDays(_Data):
    """Days outside the critical-peak months whose maximum temperature reached the threshold."""

    kind: Literal["hot_days"]
    days: list[HotDay]

    @property
    def dates(self) -> frozenset[date]:
        return frozenset(d.day for d in self.days)


class AgencyPeriodPrices(_Data):
    """One TOU period's components as the announcement prints them; a missing one is derived."""

    energy: Decimal | None = Field(default=None, ge=0)
    transmission: Decimal | None = Field(default=None, ge=0)
    line_loss: Decimal | None = Field(default=None, ge=0)
    system_operation: Decimal | None = None


class AgencyComponents(_Data):
    """One row of an agency-purchase table: flat-period 元/kWh, funds excluded, at the precision
    the announcement publishes (energy 0.377716, 输配电 0.0405). `periods` carries the per-period
    prices the announcement prints, used as printed instead of flat × ratio."""

    energy: Decimal = Field(ge=0)
    transmission: Decimal = Field(ge=0)
    line_loss: Decimal = Field(ge=0)
    system_operation: Decimal
    market_allocation: Decimal
    periods: dict[Literal["critical_peak", "peak", "flat", "valley"], AgencyPeriodPrices] = {}


class BasicCharges(_Data):
    capacity: Decimal = Field(ge=0)  # 元/kVA·月
    demand: Decimal = Field(ge=0)  # 元/kW·月


class AgencyPurchase(_Data):
    """A month's agency-purchase announcement: per tariff type and voltage level."""

    kind: Literal["agency_purchase"]
    prices: dict[Literal["single", "two_part"], dict[str, AgencyComponents]]
    basic_charges: dict[str, BasicCharges]


class PowerFactorTable(_Data):
    below_lowest_step_percent: Decimal
    points: list[tuple[Decimal, Decimal]]

    @model_validator(mode="after")
    def _contiguous(self) -> PowerFactorTable:
        pfs = [pf for pf, _ in self.points]
        if len(set(pfs)) != len(pfs):
            raise ValueError("points: a power factor is listed twice")
        ordered = sorted(pfs)
        for low, high in zip(ordered, ordered[1:], strict=False):
            if high - low != Decimal("0.01"):
                raise ValueError(f"points: gap between {low} and {high}")
        return self


class PowerFactor(_Data):
    """The three adjustment tables keyed by standard ("0.90", "0.85", "0.80")."""

    kind: Literal["power_factor"]
    pf_decimals: int = Field(ge=1, le=4)
    tables: dict[str, PowerFactorTable]


class GovernmentFunds(_Data):
    kind: Literal["government_funds"]
    rates: dict[Literal["ci", "residential", "agricultural"], Decimal]


class AgriculturalPowerFactor(_Data):
    """Who is assessed: agricultural users from `min_capacity_kva` up, against `standard`."""

    standard: Decimal = Field(gt=0, le=1)
    min_capacity_kva: Decimal = Field(ge=0)


class Agricultural(_Data):
    """Agricultural production: one catalog price per voltage level, funds billed separately.

    `time_of_use` is in the data so the file says plainly that agricultural TOU is not applied;
    the engine bills only single prices, so a file claiming TOU is refused rather than misbilled.
    """

    kind: Literal["agricultural"]
    prices: dict[str, Decimal]
    time_of_use: bool
    funds_rate: Literal["ci", "residential", "agricultural"]
    power_factor: AgriculturalPowerFactor

    @model_validator(mode="after")
    def _single_part(self) -> Agricultural:
        if not self.prices:
            raise ValueError("prices: need at least one voltage level")
        if any(price < 0 for price in self.prices.values()):
            raise ValueError("prices: a price is negative")
        if self.time_of_use:
            raise ValueError("time_of_use: agricultural time-of-use pricing is not supported by the engine")
        return self


_KINDS: dict[str, type[_Data]] = {
    "residential_tiers": ResidentialTiers,
    "residential_tou": ResidentialTou,
    "ci_tou": CiTou,
    "hot_days": HotDays,
    "agency_purchase": AgencyPurchase,
    "power_factor": PowerFactor,
    "government_funds": GovernmentFunds,
    "agricultural": Agricultural,
}


# ---------------------------------------------------------------- versions


class Unconfirmed(_Data):
    field: str
    note: str


class TariffVersion(_Data):
    """One version of one tariff: when it applies, where, on whose authority, and its data."""

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    kind: str
    region: str
    applies_to_regions: list[str] = []
    effective_from: date
    effective_to: date | None = None
    source: list[str] = Field(min_length=1)
    confirmed: bool
    note: str | None = None
    unconfirmed: list[Unconfirmed] = []
    data: Any

    @model_validator(mode="after")
    def _consistent(self) -> TariffVersion:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        if not self.confirmed and not (self.note or self.unconfirmed):
            raise ValueError("confirmed: false needs a note saying what is unconfirmed")
        if self.confirmed and self.unconfirmed:
            raise ValueError("confirmed: true but unconfirmed figures are listed")
        return self

    @functools.cached_property
    def figure_caveats(self) -> tuple[tuple[str, str], ...]:
        """(field, note) of the unconfirmed *figures* (prices, rates, limits, days); an assumed
        effective date is a caveat about the version, not a figure a bill line uses."""
        return tuple((u.field, u.note) for u in self.unconfirmed if u.field not in ("effective_from", "effective_to"))

    @functools.cached_property
    def _caveat_matches(self) -> dict[str, tuple[str, ...]]:
        return {}

    def caveats_for(self, path: str) -> tuple[str, ...]:
        """「key field：note」 of the unconfirmed figures covering `path` (or inside it), memoised:
        bills ask for the same few paths again and again."""
        matches = self._caveat_matches.get(path)
        if matches is None:
            matches = tuple(
                f"{self.key} {name}：{note}" for name, note in self.figure_caveats
                if path == name or path.startswith(name + ".") or name.startswith(path + ".")
            )
            self._caveat_matches[path] = matches
        return matches

    @functools.cached_property
    def key(self) -> str:
        """The name a bill line cites, e.g. ``gz-residential-tiers@2021-06-01``."""
        return f"{self.id}@{self.version}"

    @functools.cached_property
    def source_text(self) -> str:
        return "；".join(self.source)

    @functools.cached_property
    def regions(self) -> frozenset[str]:
        return frozenset([self.region, *self.applies_to_regions])

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


def _format_loc(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def load_version_file(path: Path) -> TariffVersion:
    """Parse and validate one tariff file; a problem raises TariffDataError naming file and field."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise TariffDataError(f"not valid YAML: {exc}", field=path.name) from None
    if not isinstance(raw, dict):
        raise TariffDataError("expected a mapping at the top level", field=path.name)
    header_fields = set(TariffVersion.model_fields) - {"data"}
    header = {k: v for k, v in raw.items() if k in header_fields}
    body = {k: v for k, v in raw.items() if k not in header_fields}
    body["kind"] = raw.get("kind")
    kind_model = _KINDS.get(str(raw.get("kind")))
    if kind_model is None:
        raise TariffDataError(f"unknown kind {raw.get('kind')!r}; known: {sorted(_KINDS)}", field=f"{path.name}: kind")
    try:
        data = kind_model.model_validate(body)
        version = TariffVersion.model_validate({**header, "data": data})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TariffDataError(first["msg"], field=f"{path.name}: {_format_loc(first['loc'])}") from None
    expected_name = f"{version.key}.yaml"
    if path.name != expected_name:
        raise TariffDataError(f"file name should be {expected_name}", field=f"{path.name}: version")
    return version


class TariffLibrary:
    """All versions of all tariffs, answering which version is in force on a day."""

    def __init__(self, versions: Iterable[TariffVersion], origin: dict[str, str] | None = None) -> None:
        by_id: dict[str, list[TariffVersion]] = {}
        for version in versions:
            by_id.setdefault(version.id, []).append(version)
        origin = origin or {}
        for tariff_id, items in by_id.items():
            items.sort(key=lambda v: v.effective_from)
            for earlier, later in zip(items, items[1:], strict=False):
                if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
                    raise TariffDataError(
                        f"overlaps {earlier.key} (each day may have only one version in force)",
                        field=f"{origin.get(later.key, later.key)}: effective_from",
                    )
        self._by_id = by_id
        self.derived: dict[tuple[object, ...], object] = {}  # values computed from versions, kept for speed
        self._starts = {tid: [v.effective_from for v in items] for tid, items in by_id.items()}
        self._change_dates = {
            tid: sorted(
                {v.effective_from for v in items}
                | {v.effective_to + timedelta(days=1) for v in items if v.effective_to is not None}
            )
            for tid, items in by_id.items()
        }
        self._check_references(origin)

    def _check_references(self, origin: dict[str, str]) -> None:
        for items in self._by_id.values():
            for version in items:
                data = version.data
                ref = None
                if isinstance(data, ResidentialTou):
                    ref = ("tiers_tariff", data.tiers_tariff)
                elif isinstance(data, CiTou) and data.critical_peak is not None:
                    ref = ("critical_peak.hot_days_tariff", data.critical_peak.hot_days_tariff)
                if ref and ref[1] not in self._by_id:
                    raise TariffDataError(
                        f"refers to unknown tariff {ref[1]!r}", field=f"{origin.get(version.key, version.key)}: {ref[0]}"
                    )

    def tariff_ids(self) -> list[str]:
        return sorted(self._by_id)

    def versions(self, tariff_id: str) -> list[TariffVersion]:
        """Every version of a tariff, oldest first."""
        try:
            return list(self._by_id[tariff_id])
        except KeyError:
            raise UnknownTariffError(f"没有名为 {tariff_id!r} 的电价", field="tariff_id") from None

    def in_force(self, tariff_id: str, day: date) -> TariffVersion:
        """The version of `tariff_id` in force on `day` (TariffPeriodError when none is)."""
        return _in_force(self, tariff_id, day)

    def _lookup(self, tariff_id: str, day: date) -> TariffVersion:
        items = self._by_id.get(tariff_id)
        if items is None:
            raise UnknownTariffError(f"没有名为 {tariff_id!r} 的电价", field="tariff_id")
        index = bisect.bisect_right(self._starts[tariff_id], day) - 1
        if index >= 0 and items[index].covers(day):
            return items[index]
        span = f"{items[0].effective_from} 至 {items[-1].effective_to or '今'}"
        raise TariffPeriodError(f"{day} 不在电价 {tariff_id} 任何版本的执行期内（已有版本覆盖 {span}）", field="period")

    def change_dates(self, tariff_id: str, start: date, end: date) -> list[date]:
        """Days in (start, end] on which a version of `tariff_id` begins or the previous one ends."""
        dates = self._change_dates.get(tariff_id)
        if dates is None:
            raise UnknownTariffError(f"没有名为 {tariff_id!r} 的电价", field="tariff_id")
        low = bisect.bisect_right(dates, start)
        high = bisect.bisect_right(dates, end)
        return dates[low:high]

    def unconfirmed(self) -> list[tuple[str, str, str]]:
        """(version key, field, note) for every figure no source settles; the docs list them."""
        return [
            (v.key, u.field, u.note)
            for items in self._by_id.values()
            for v in items
            for u in v.unconfirmed
        ]


@functools.lru_cache(maxsize=65536)
def _in_force(library: TariffLibrary, tariff_id: str, day: date) -> TariffVersion:
    return library._lookup(tariff_id, day)


def load_library(directory: Path = TARIFF_DIR) -> TariffLibrary:
    """Load and validate every `*.yaml` under `directory` (recursively)."""
    paths = sorted(directory.rglob("*.yaml"))
    if not paths:
        raise TariffDataError("no tariff files found", field=str(directory))
    versions = []
    origin = {}
    for path in paths:
        version = load_version_file(path)
        if version.key in origin:
            raise TariffDataError(f"duplicate version {version.key} (also in {origin[version.key]})", field=path.name)
        origin[version.key] = path.name
        versions.append(version)
    return TariffLibrary(versions, origin)


@functools.cache
def get_library() -> TariffLibrary:
    """The packaged tariff library, loaded once per process."""
    return load_library(TARIFF_DIR)
