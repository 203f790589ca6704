"""Bill verification (电费核查, T/CI 1281 §7.4): rules that hold a computed bill back for review.

Each rule looks at one computed bill and what is known around it (last month's kWh, the same
month last year, the meter readings, other billing periods) and returns hits. A hit is not a
verdict: the cycle turns it into a review work order and issues the bill only once a person
has resolved it. Thresholds come from `operations/policy.yaml`, never from code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing_core.bill_types import ComputedBill
from billing_core.money import ZERO, to_fen
from billing_core.operations.policy import OperationsPolicy, VerificationPolicy, load_policy


@dataclass(frozen=True)
class RegisterReading:
    """One register's readings for the period, as the meter data system delivered them."""

    register: str  # "active_total", "peak", "reactive_total", ...
    previous: Decimal | None  # None = collection failed
    current: Decimal | None
    multiplier: Decimal = Decimal("1")
    previous_multiplier: Decimal | None = None  # the multiplier of the previous period
    meter_replaced: bool = False  # a meter-change record explains a reading that went down


@dataclass(frozen=True)
class VerificationContext:
    """A computed bill and the facts the rules compare it with."""

    bill: ComputedBill
    category: str  # CustomerCategory value: selects price bounds
    last_month_kwh: Decimal | None = None
    same_month_last_year_kwh: Decimal | None = None
    readings: Sequence[RegisterReading] = ()
    missing_days: Sequence[date] = ()
    other_periods: Sequence[tuple[date, date]] = ()  # periods of this account's other live bills
    tariff_prices: Mapping[str, Decimal] | None = None  # line code -> the tariff's unit price


@dataclass(frozen=True)
class VerificationHit:
    """A rule that fired: a stable code for reports and a Chinese sentence for the reviewer."""

    rule: str
    message: str
    details: dict[str, str] = field(default_factory=dict)


Rule = Callable[[VerificationContext, VerificationPolicy], list[VerificationHit]]


def missing_reading(ctx: VerificationContext, policy: VerificationPolicy) -> list[VerificationHit]:
    """Collection failure: a register without a reading, or days with no data (7.1)."""
    hits = []
    for reading in ctx.readings:
        if reading.previous is None or reading.current is None:
            hits.append(
                VerificationHit(
                    "missing_reading",
                    f"表计寄存器「{reading.register}」缺少抄表示数（采集失败），需人工核实。",
                    {"register": reading.register},
                )
            )
    if ctx.missing_days:
        days = sorted(ctx.missing_days)
        hits.append(
            VerificationHit(
                "missing_reading",
                f"本期有 {len(days)} 天缺少日冻结数据（首日 {days[0].isoformat()}），需人工核实。",
                {"missing_days": str(len(days)), "first": days[0].isoformat()},
            )
        )
    return hits


def reading_decreased(ctx: VerificationContext, policy: VerificationPolicy) -> list[VerificationHit]:
    """A reading lower than the last one with no meter-change record (never a negative bill)."""
    hits = []
    for reading in ctx.readings:
        if reading.previous is None or reading.current is None or reading.meter_replaced:
            continue
        if reading.current < reading.previous:
            hits.append(
                VerificationHit(
                    "reading_decreased",
                    f"寄存器「{reading.register}」本期示数 {reading.current} 小于上期示数 "
                    f"{reading.previous}，且无换表记录，可能是表计翻转或故障。",
                    {"register": reading.register, "previous": str(reading.previous),
                     "current": str(reading.current)},
                )
            )
    return hits


def multiplier_changed(ctx: VerificationContext, policy: VerificationPolicy) -> list[VerificationHit]:
    """The combined multiplier (CT × PT) differs from last period's: a wrong one scales the bill."""
    hits = []
    for reading in ctx.readings:
        previous = reading.previous_multiplier
        if previous is not None and previous != reading.multiplier:
            hits.append(
                VerificationHit(
                    "multiplier_changed",
                    f"寄存器「{reading.register}」综合倍率由 {previous} 变为 {reading.multiplier}，"
                    "需核实互感器变更记录。",
                    {"register": reading.register, "previous": str(previous),
                     "current": str(reading.multiplier)},
                )
            )
    return hits


def _change_hit(
    kwh: Decimal, base: Decimal | None, limit: Decimal, min_base: Decimal, label: str, suffix: str
) -> VerificationHit | None:
    if base is None or (base < min_base and kwh < min_base):
        return None
    if base == ZERO:
        change = None  # from nothing to something above min_base: always a jump
    else:
        change = (kwh - base) / base
        if abs(change) <= limit:
            return None
    direction = "jump" if kwh > base else "drop"
    word = "突增" if direction == "jump" else "突减"
    pct = "∞" if change is None else f"{(change * 100).quantize(Decimal('0.1'))}%"
    return VerificationHit(
        f"consumption_{direction}_{suffix}",
        f"本期电量 {kwh} kWh 较{label} {base} kWh {word} {pct}，超过 ±{(limit * 100).normalize()}% 阈值。",
        {"kwh": str(kwh), "base": str(base), "change": pct},
    )


def consumption_change(ctx: VerificationContext, policy: VerificationPolicy) -> list[VerificationHit]:
    """Consumption jump or drop against last month and the same month last year."""
    rules = policy.consumption_change
    kwh = ctx.bill.total_kwh
    hits = [
        _change_hit(kwh, ctx.last_month_kwh, rules.vs_last_month, rules.min_base_kwh, "上月", "last_month"),
        _change_hit(
            kwh, ctx.same_month_last_year_kwh, rules.vs_same_month_last_year, rules.min_base_kwh,
            "去年同期", "last_year",
        ),
    ]
    return [hit for hit in hits if hit is not None]


def zero_consumption_positive_charge(
    ctx: VerificationContext, policy: VerificationPolicy
) -> list[VerificationHit]:
    """No kWh but money charged (other than a two-part user's basic charge)."""
    if ctx.bill.total_kwh != ZERO:
        return []
    allowed = set(policy.zero_consumption_allowed_units)
    charged = sum((line.amount for line in ctx.bill.lines if line.unit not in allowed), ZERO)
    if charged <= ZERO:
        return []
    return [
        VerificationHit(
            "zero_consumption_positive_charge",
            f"本期电量为 0，但除基本电费外仍计收 {to_fen(charged)} 元。",
            {"charged": str(to_fen(charged))},
        )
    ]


def amount_mismatch(ctx: VerificationContext, policy: VerificationPolicy) -> list[VerificationHit]:
    """Each line's amount must equal quantity × unit price (to the fen), the total their sum."""
    hits = []
    tolerance = policy.amount_tolerance
    for index, line in enumerate(ctx.bill.lines):
        expected = to_fen(line.quantity * line.unit_price)
        if abs(expected - line.amount) > tolerance:
            hits.append(
                VerificationHit(
                    "amount_mismatch",
                    f"第 {index + 1} 行「{line.name}」金额 {line.amount} 元 ≠ 数量 {line.quantity} × "
                    f"单价 {line.unit_price} = {expected} 元。",
                    {"line": line.code, "amount": str(line.amount), "expected": str(expected)},
                )
            )
    line_sum = sum((line.amount for line in ctx.bill.lines), ZERO)
    if abs(line_sum - ctx.bill.total) > tolerance:
        hits.append(
            VerificationHit(
                "amount_mismatch",
                f"账单合计 {ctx.bill.total} 元 ≠ 各行金额之和 {line_sum} 元。",
                {"line": "total", "amount": str(ctx.bill.total), "expected": str(line_sum)},
            )
        )
    return hits


def price_outside_tariff(ctx: VerificationContext, policy: VerificationPolicy) -> list[VerificationHit]:
    """A per-kWh price outside the category's plausible band, or different from the tariff's."""
    hits = []
    bounds = policy.kwh_price_bounds.get(ctx.category)
    negative_ok = set(policy.negative_price_line_codes)
    for line in ctx.bill.lines:
        if ctx.tariff_prices is not None and line.code in ctx.tariff_prices:
            expected = ctx.tariff_prices[line.code]
            scale = max(abs(expected), Decimal("1"))
            if abs(line.unit_price - expected) > policy.tariff_price_tolerance * scale:
                hits.append(
                    VerificationHit(
                        "price_outside_tariff",
                        f"「{line.name}」单价 {line.unit_price} 与电价表 {expected} 不符。",
                        {"line": line.code, "price": str(line.unit_price), "tariff": str(expected)},
                    )
                )
                continue
        if bounds is None or line.unit != "kWh" or line.code in negative_ok:
            continue
        low, high = bounds
        if not low <= line.unit_price <= high:
            hits.append(
                VerificationHit(
                    "price_outside_tariff",
                    f"「{line.name}」单价 {line.unit_price} 元/kWh 超出该类用户合理范围 {low}–{high}。",
                    {"line": line.code, "price": str(line.unit_price), "low": str(low), "high": str(high)},
                )
            )
    return hits


def overlapping_period(ctx: VerificationContext, policy: VerificationPolicy) -> list[VerificationHit]:
    """Another live bill of the account covers some of the same days: a double charge."""
    start, end = ctx.bill.period_start, ctx.bill.period_end
    hits = []
    for other_start, other_end in ctx.other_periods:
        if other_start <= end and start <= other_end:
            hits.append(
                VerificationHit(
                    "overlapping_period",
                    f"计费周期 {start}～{end} 与已有账单周期 {other_start}～{other_end} 重叠。",
                    {"other_start": other_start.isoformat(), "other_end": other_end.isoformat()},
                )
            )
    return hits


RULES: tuple[Rule, ...] = (
    missing_reading,
    reading_decreased,
    multiplier_changed,
    consumption_change,
    zero_consumption_positive_charge,
    amount_mismatch,
    price_outside_tariff,
    overlapping_period,
)


def verify_bill(ctx: VerificationContext, policy: OperationsPolicy | None = None) -> list[VerificationHit]:
    """Run every rule; an empty list means the bill may be issued without review."""
    rules = (policy or load_policy()).verification
    hits: list[VerificationHit] = []
    for rule in RULES:
        hits.extend(rule(ctx, rules))
    return hits
