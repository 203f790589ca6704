"""A reproducible demo utility: customers, meters, 13 months of daily readings, bills, payments.

`seed_demo` builds a Guangzhou utility from a seed — the same seed gives the same database,
row for row — so demos, evals and the agent's tests can name real-looking accounts. Bills of
2025-10 … 2026-09 are computed by `compute_bill` from the readings, through the same
`consumption` code the billing cycle uses, and issued; 2026-10 is read but not billed, so the
monthly cycle has work. A bank statement for 2026-09 with the three classic exceptions (a
duplicate deduction, a payment the bank never received, an amount mismatch) is written next to
the database for the reconciliation step.

Rows are written with bulk inserts in one transaction: 2,000 customers and about a million
readings take seconds, and a failure leaves the database as it was.
"""

from __future__ import annotations

import csv
from bisect import bisect_left, bisect_right
import random
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import accumulate, repeat
from operator import itemgetter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from billing_core.demo import names
from billing_core.bill_types import (
    BasicChargeMode,
    BillRequest,
    ComputedBill,
    CustomerCategory,
    HouseholdType,
    PurchaseMode,
    TariffAttributes,
)
from billing_core.db.bulk import bulk_insert
from billing_core.consumption import MeterInfo, ReadingValue, compute_consumption
from billing_core.errors import BillingError
from billing_core.db.models import (
    Adjustment,
    AdjustmentStatus,
    Bill,
    BillLine,
    BillStatus,
    Customer,
    Meter,
    Payment,
    PaymentChannel,
    PaymentStatus,
    Reading,
    ReadingRegister,
    ReadingSource,
    WorkOrder,
    WorkOrderKind,
    WorkOrderPriority,
    WorkOrderStatus,
    tariff_attributes_of,
)
from billing_core.periods import period_bounds, periods_between
from billing_core.settings import var_dir

FIRST_DAY = date(2025, 10, 1)
LAST_DAY = date(2026, 10, 31)
OPENING_DAY = FIRST_DAY - timedelta(days=1)  # the reading that opens the first period
FIRST_BILLED, LAST_BILLED = "2025-10", "2026-09"
CYCLE_PERIOD = "2026-10"  # read, not billed: the monthly cycle's work
STATEMENT_PERIOD = "2026-09"
STATEMENT_HEADER = ("bank_txn_id", "value_date", "account_no", "bill_no", "amount", "currency", "channel",
                    "payer_name")
BEIJING = timezone(timedelta(hours=8))
CENT = Decimal("0.01")
MILLI = Decimal("0.001")
WINDOW_LOOKBACK = timedelta(days=10)  # longer than any run of missing days the demo makes
TOU = (ReadingRegister.CRITICAL_PEAK, ReadingRegister.PEAK, ReadingRegister.FLAT, ReadingRegister.VALLEY)
RESIDENTIAL_TOU_REGISTERS = (ReadingRegister.PEAK, ReadingRegister.FLAT, ReadingRegister.VALLEY)

# Month → load factor. Guangzhou homes run air conditioning from May to October.
HOME_SEASON = {1: 0.85, 2: 0.8, 3: 0.85, 4: 0.95, 5: 1.2, 6: 1.5, 7: 1.7, 8: 1.7, 9: 1.5, 10: 1.15, 11: 0.95,
               12: 0.9}
SHOP_SEASON = {1: 0.9, 2: 0.75, 3: 0.9, 4: 1.0, 5: 1.1, 6: 1.3, 7: 1.4, 8: 1.4, 9: 1.3, 10: 1.1, 11: 1.0, 12: 0.95}
PLANT_SEASON = {1: 0.95, 2: 0.6, 3: 0.95, 4: 1.0, 5: 1.05, 6: 1.1, 7: 1.15, 8: 1.15, 9: 1.1, 10: 1.05, 11: 1.0,
                12: 1.0}
FARM_SEASON = {1: 0.6, 2: 0.6, 3: 0.8, 4: 1.2, 5: 1.4, 6: 1.5, 7: 1.5, 8: 1.5, 9: 1.3, 10: 1.0, 11: 0.8, 12: 0.6}
# Shares of a day's energy in 尖 / 峰 / 平 / 谷 hours (尖峰 hours are inside the peak hours).
SHOP_TOU = (0.16, 0.30, 0.42, 0.12)
PLANT_TOU = (0.10, 0.22, 0.33, 0.35)
HOME_TOU = (0.0, 0.30, 0.35, 0.35)


@dataclass
class _Plan:
    """How one customer uses electricity (drawn once from the seed)."""

    kind: str  # home / shop / plant / farm
    daily_kwh: float
    season: dict[int, float]
    registers: tuple[ReadingRegister, ...]
    tou_shares: tuple[float, float, float, float] | None
    tan_phi: float | None  # reactive / active, for PF-assessed customers
    load_factor: float | None  # for demand-billed customers: average / maximum demand
    multiplier: int
    replaced_on: date | None = None
    new_multiplier: int | None = None
    backwards_on: date | None = None
    missing: list[date] = field(default_factory=list)


@dataclass
class SeedSummary:
    """What `seed_demo` created (printed by `powerdesk demo seed`)."""

    seed: int
    customers: Counter[str] = field(default_factory=Counter)
    meters: int = 0
    replaced_meters: int = 0
    readings: int = 0
    bills: int = 0
    bill_total: Decimal = Decimal("0")
    unbilled: Counter[str] = field(default_factory=Counter)  # reason → count
    payments: Counter[str] = field(default_factory=Counter)  # channel → count
    unpaid_bills: int = 0
    overdue_accounts: int = 0
    wechat_bound: int = 0
    backwards_accounts: list[str] = field(default_factory=list)
    missing_day_accounts: list[str] = field(default_factory=list)
    statement_path: Path | None = None
    statement_exceptions: dict[str, str] = field(default_factory=dict)  # kind → bill_no
    seconds: float = 0.0


class DemoNotEmptyError(BillingError):
    """The database already holds customers; seeding would mix two utilities."""


def is_empty(session: Session) -> bool:
    """True when no customer exists yet (the test `--if-empty` uses)."""
    return session.scalar(select(func.count()).select_from(Customer)) == 0


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _category_mix(count: int, rng: random.Random) -> list[tuple[CustomerCategory, str]]:
    """(category, variant) for each customer: mostly homes, every kind present even for small N."""
    shares = [
        ((CustomerCategory.CI_TWO_PART, "capacity"), 0.015),
        ((CustomerCategory.CI_TWO_PART, "demand"), 0.015),
        ((CustomerCategory.CI_SINGLE, "shop"), 0.05),
        ((CustomerCategory.CI_SINGLE, "workshop"), 0.015),
        ((CustomerCategory.AGRICULTURAL, "farm"), 0.025),
        ((CustomerCategory.RESIDENTIAL, "many_person"), 0.06),
        ((CustomerCategory.RESIDENTIAL, "shared_meter"), 0.03),
        ((CustomerCategory.RESIDENTIAL, "tou"), 0.03),
    ]
    mix: list[tuple[CustomerCategory, str]] = []
    for kind, share in shares:
        mix += [kind] * max(1, round(count * share))
    mix += [(CustomerCategory.RESIDENTIAL, "ordinary")] * max(0, count - len(mix))
    mix = mix[:count]
    rng.shuffle(mix)
    return mix


def _customer_row(index: int, category: CustomerCategory, variant: str, rng: random.Random) -> tuple[dict[str, Any], _Plan]:
    """One customer's row and usage plan."""
    row: dict[str, Any] = {
        "id": index,
        "category": category,
        "household_type": HouseholdType.ORDINARY,
        "residential_tou": False,
        "voltage_level": "<1kV",
        "capacity_kva": None,
        "basic_charge_mode": None,
        "contracted_demand_kw": None,
        "pf_standard": None,
        "purchase_mode": PurchaseMode.CATALOG,
        "agency_price_multiplier": Decimal("1"),
        "region": "guangzhou",
        "wechat_openid": None,
        "withholding_agreement": False,
        "prepaid_balance": Decimal("0"),
        "phone": names.mobile(rng),
        "id_last4": None,
        "created_at": datetime(2015, 1, 1, tzinfo=UTC) + timedelta(days=rng.randint(0, 3600), minutes=index),
    }
    if category is CustomerCategory.RESIDENTIAL:
        district = rng.choice(names.URBAN)
        row |= {"name": names.person_name(rng), "address": names.home_address(rng, district),
                "id_last4": names.id_last4(rng)}
        daily = rng.lognormvariate(2.0, 0.45)  # ≈ 7.4 kWh a day: 220 kWh a month on average
        registers: tuple[ReadingRegister, ...] = (ReadingRegister.ACTIVE_TOTAL,)
        shares = None
        if variant == "many_person":
            row["household_type"] = HouseholdType.MANY_PERSON
            daily *= 1.6
        elif variant == "shared_meter":
            row["household_type"] = HouseholdType.SHARED_METER
            daily *= 3.5
        elif variant == "tou":
            row["residential_tou"] = True
            registers = (ReadingRegister.ACTIVE_TOTAL, *RESIDENTIAL_TOU_REGISTERS)
            shares = HOME_TOU
        plan = _Plan("home", daily, HOME_SEASON, registers, shares, None, None, 1)
    elif category is CustomerCategory.CI_SINGLE:
        row |= {"purchase_mode": PurchaseMode.AGENCY}
        if variant == "shop":
            district = rng.choice(names.URBAN)
            street = rng.choice(names.DISTRICTS[district][1])
            row |= {"name": names.shop_name(rng, street), "address": names.shop_address(rng, district)}
            plan = _Plan("shop", rng.uniform(25, 180), SHOP_SEASON,
                         (ReadingRegister.ACTIVE_TOTAL, *TOU), SHOP_TOU, None, None, rng.choice([1, 1, 1, 30]))
        else:  # a workshop of 100–250 kVA: PF assessed at 0.85, CT metering
            district = rng.choice(names.INDUSTRIAL)
            row |= {"name": names.firm_name(rng), "address": names.plant_address(rng, district),
                    "capacity_kva": Decimal(rng.choice([100, 125, 160, 200, 250])), "pf_standard": Decimal("0.85"),
                    "voltage_level": rng.choice(["<1kV", "1-10kV"])}
            plan = _Plan("shop", rng.uniform(300, 1200), PLANT_SEASON,
                         (ReadingRegister.ACTIVE_TOTAL, *TOU, ReadingRegister.REACTIVE_TOTAL), PLANT_TOU,
                         rng.uniform(0.3, 0.75), None, rng.choice([40, 60, 80]))
    elif category is CustomerCategory.CI_TWO_PART:
        district = rng.choice(names.INDUSTRIAL)
        capacity = rng.choice([315, 400, 500, 630, 800, 1000, 1250, 1600, 2000])
        row |= {"name": names.firm_name(rng), "address": names.plant_address(rng, district),
                "voltage_level": "1-10kV", "purchase_mode": PurchaseMode.AGENCY,
                "capacity_kva": Decimal(capacity), "pf_standard": Decimal("0.90"),
                "basic_charge_mode": BasicChargeMode(variant)}
        if rng.random() < 0.12:  # a few high-energy-use plants pay 1.5× the agency price
            row["agency_price_multiplier"] = Decimal("1.5")
        daily = capacity * rng.uniform(6.0, 11.0)
        load_factor = rng.uniform(0.5, 0.75)
        registers = (ReadingRegister.ACTIVE_TOTAL, *TOU, ReadingRegister.REACTIVE_TOTAL)
        if variant == "demand":
            typical_max = daily / 24 / load_factor
            row["contracted_demand_kw"] = Decimal(int(typical_max * rng.uniform(0.95, 1.25)))
            registers = (*registers, ReadingRegister.MAX_DEMAND)
        # Mostly good power factors; one plant in five runs below the 0.90 standard.
        tan_phi = rng.uniform(0.55, 0.75) if rng.random() < 0.2 else rng.uniform(0.2, 0.45)
        plan = _Plan("plant", daily, PLANT_SEASON, registers, PLANT_TOU, tan_phi,
                     load_factor if variant == "demand" else None, rng.choice([1000, 1500, 2000]))
    else:
        district = rng.choice(names.RURAL)
        row |= {"name": names.farm_name(rng, district), "address": names.farm_address(rng, district)}
        plan = _Plan("farm", rng.uniform(8, 120), FARM_SEASON, (ReadingRegister.ACTIVE_TOTAL,), None, None, None,
                     rng.choice([1, 1, 20]))
    return row, plan


def _account_no(index: int, address: str) -> str:
    """户号: '03' (Guangzhou) + 2-digit district + 8-digit sequence."""
    code = next((c for d, (c, _) in names.DISTRICTS.items() if d in address), 0)
    return f"03{code:02d}{index:08d}"


ALL_DAYS = [OPENING_DAY + timedelta(days=i) for i in range((LAST_DAY - OPENING_DAY).days + 1)]
_DAY_INFO = [(day.month, day.weekday()) for day in ALL_DAYS[1:]]  # the days that have an increment


def _daily_increments(plan: _Plan, rng: random.Random) -> dict[ReadingRegister, list[int]]:
    """Per register, each day's increment (the day after OPENING_DAY first), in meter units / 100.

    Built column by column: a million readings are generated in seconds this way.
    """
    rand = rng.random
    base, season = plan.daily_kwh, plan.season
    weekday_factor = {"plant": {6: 0.55}, "home": {5: 1.15, 6: 1.15}}.get(plan.kind, {})
    kwh = [base * season[month] * (0.7 + 0.6 * rand()) * weekday_factor.get(weekday, 1.0)
           for month, weekday in _DAY_INFO]
    replaced_index = (plan.replaced_on - ALL_DAYS[1]).days if plan.replaced_on else len(kwh)
    multipliers = [plan.multiplier] * (replaced_index + 1) + [plan.new_multiplier or plan.multiplier] * len(kwh)
    totals = [max(0, round(k * 100 / m)) for k, m in zip(kwh, multipliers, strict=False)]
    increments: dict[ReadingRegister, list[int]] = {ReadingRegister.ACTIVE_TOTAL: totals}
    if plan.tou_shares:
        shares = plan.tou_shares
        parts = [[int(t * share) for t in totals] for share in shares[:3]]
        parts.append([t - a - b - c for t, a, b, c in zip(totals, *parts, strict=True)])
        for register, column in zip(TOU, parts, strict=True):
            if register in plan.registers:
                increments[register] = column
    if plan.tan_phi is not None:
        tan_phi = plan.tan_phi
        increments[ReadingRegister.REACTIVE_TOTAL] = [round(t * tan_phi * (0.9 + 0.2 * rand())) for t in totals]
    if plan.load_factor is not None:  # the day's maximum demand in meter units / 1000 (3 decimals)
        factor = 1000 / 24 / plan.load_factor
        increments[ReadingRegister.MAX_DEMAND] = [
            round(k * factor * (0.85 + 0.3 * rand()) / m) for k, m in zip(kwh, multipliers, strict=False)
        ]
    return increments


def _register_readings(meter_id: int, days: list[date], register: ReadingRegister, values: Iterable[int],
                       scale: Decimal = CENT) -> list[ReadingValue]:
    decimals = map(scale.__mul__, map(Decimal, values))
    return list(map(ReadingValue, repeat(meter_id), days, repeat(register), decimals, repeat(ReadingSource.DAILY)))


def _meters_and_readings(
    index: int, plan: _Plan, rng: random.Random, next_meter_id: Callable[[], int]
) -> tuple[list[dict[str, Any]], list[ReadingValue]]:
    """The customer's meter(s) and every reading from OPENING_DAY to LAST_DAY, in date order."""
    days = ALL_DAYS
    increments = _daily_increments(plan, rng)
    installed = date(2015, 1, 1) + timedelta(days=rng.randint(0, 3500))
    old_id = next_meter_id()
    meters = [{"id": old_id, "asset_no": f"0300{index:010d}", "customer_id": index,
               "multiplier": Decimal(plan.multiplier), "installed_on": installed, "removed_on": None,
               "replaced_meter_id": None, "final_reading": None}]
    cumulative = [r for r in plan.registers if r is not ReadingRegister.MAX_DEMAND]
    start = {r: rng.randint(0, 4_000_000) for r in cumulative}  # hundredths: a meter years in service
    if plan.tou_shares:  # the total register is the sum of the TOU registers
        start[ReadingRegister.ACTIVE_TOTAL] = sum(start[r] for r in cumulative if r in TOU)
    values = {r: list(accumulate(increments[r], initial=start[r])) for r in cumulative}
    cut = days.index(plan.replaced_on) if plan.replaced_on else len(days) - 1  # the old meter's last day
    readings: list[ReadingValue] = []
    for register in cumulative:
        readings += _register_readings(old_id, days[: cut + 1], register, values[register][: cut + 1])
    if ReadingRegister.MAX_DEMAND in plan.registers:
        readings += _register_readings(old_id, days[1 : cut + 1], ReadingRegister.MAX_DEMAND,
                                       increments[ReadingRegister.MAX_DEMAND][:cut], MILLI)
    if plan.replaced_on:
        new_id = next_meter_id()
        meters[0]["removed_on"] = plan.replaced_on
        meters[0]["final_reading"] = Decimal(values[ReadingRegister.ACTIVE_TOTAL][cut]) * CENT
        meters.append({"id": new_id, "asset_no": f"0301{index:010d}", "customer_id": index,
                       "multiplier": Decimal(plan.new_multiplier or plan.multiplier), "installed_on": plan.replaced_on,
                       "removed_on": None, "replaced_meter_id": old_id, "final_reading": None})
        factory = rng.randint(0, 300)  # a new meter leaves the factory near zero
        new_start = {r: (factory // 4 if plan.tou_shares else factory) for r in cumulative}
        if plan.tou_shares:
            new_start = {r: (factory // 4 if r in TOU else 0) for r in cumulative}
            new_start[ReadingRegister.ACTIVE_TOTAL] = sum(new_start[r] for r in cumulative if r in TOU)
        for register in cumulative:
            new_values = accumulate(increments[register][cut:], initial=new_start[register])
            readings += _register_readings(new_id, days[cut:], register, new_values)
        if ReadingRegister.MAX_DEMAND in plan.registers:
            readings += _register_readings(new_id, days[cut + 1 :], ReadingRegister.MAX_DEMAND,
                                           increments[ReadingRegister.MAX_DEMAND][cut:], MILLI)
        # Both readings of the replacement day are read on site: the old meter's final, the new one's first.
        readings = [r._replace(source=ReadingSource.MANUAL) if r.read_date == plan.replaced_on
                    and r.register is not ReadingRegister.MAX_DEMAND else r for r in readings]
    if plan.missing:
        missing = set(plan.missing)
        readings = [r for r in readings if r.read_date not in missing]
    if plan.backwards_on:  # a collection error: one day's total register reads lower than the day before
        drop = Decimal(rng.randint(500, 5000)) * CENT
        readings = [r._replace(value=r.value - drop) if r.read_date == plan.backwards_on
                    and r.register is ReadingRegister.ACTIVE_TOTAL else r for r in readings]
    readings.sort(key=itemgetter(1))
    return meters, readings


def _pick(rng: random.Random, pool: list[int], count: int) -> list[int]:
    return rng.sample(pool, min(count, len(pool)))


def _bill_period_windows() -> list[tuple[str, date, date]]:
    return [(p, *period_bounds(p)) for p in periods_between(FIRST_BILLED, LAST_BILLED)]


def _issue_time(period_end: date) -> datetime:
    issue_day = period_end + timedelta(days=5)
    return datetime.combine(issue_day, time(9, 0), BEIJING).astimezone(UTC)


def _external_ref(channel: PaymentChannel, when: datetime, serial: int) -> str:
    local = when.astimezone(BEIJING)
    prefix = {
        PaymentChannel.WECHAT_PAY: "4200",
        PaymentChannel.ALIPAY: "2026",
        PaymentChannel.BANK_WITHHOLDING: "BWH",
        PaymentChannel.BANK_TRANSFER: "BTR",
        PaymentChannel.COUNTER: "GT",
        PaymentChannel.PREPAID: "YC",
    }[channel]
    return f"{prefix}{local:%Y%m%d}{serial:08d}"


def _fix_sequences(session: Session) -> None:
    """PostgreSQL: explicit ids do not advance SERIAL sequences; move them past the seeded rows."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in ("customers", "meters", "bills", "bill_lines", "payments", "adjustments", "work_orders"):
        session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))


def seed_demo(
    session: Session,
    customers: int = 2000,
    seed: int = 42,
    statement_dir: Path | None = None,
    compute: Callable[[BillRequest], ComputedBill] | None = None,
) -> SeedSummary:
    """Create the demo utility in an empty database (refuses a populated one; caller commits)."""
    import time as clock

    if customers < 1:
        raise BillingError("must be at least 1", field="customers")
    if not is_empty(session):
        raise DemoNotEmptyError("数据库中已有客户数据，演示数据只能写入空数据库（可用 --if-empty 跳过）", field="database")
    if compute is None:
        from billing_core.tariffs.compute import compute_bill as compute
    started = clock.perf_counter()
    rng = random.Random(seed)
    summary = SeedSummary(seed=seed)
    mix = _category_mix(customers, rng)
    rows_and_plans = [_customer_row(i + 1, cat, variant, rng) for i, (cat, variant) in enumerate(mix)]

    # Special cases, drawn from the seed so they are the same every time.
    all_ids = list(range(1, customers + 1))
    homes = [r["id"] for r, p in rows_and_plans if p.kind == "home" and not r["residential_tou"]]
    plants = [r["id"] for r, p in rows_and_plans if p.kind in ("plant", "shop")]
    replaced = set(_pick(rng, homes, max(1, customers // 70)) + _pick(rng, plants, max(1, customers // 400)))
    cycle_start, cycle_end = period_bounds(CYCLE_PERIOD)
    backwards = _pick(rng, [h for h in homes if h not in replaced], max(1, customers // 700))
    missing_pool = [i for i in all_ids if i not in replaced and i not in backwards]
    missing_ids = _pick(rng, missing_pool, max(2, customers // 60))
    days = _days(FIRST_DAY, LAST_DAY - timedelta(days=1))
    for (row, plan) in rows_and_plans:
        cid = row["id"]
        if cid in replaced:
            plan.replaced_on = FIRST_DAY + timedelta(days=rng.randint(100, 320))
            plan.new_multiplier = plan.multiplier if plan.multiplier == 1 or rng.random() < 0.5 else plan.multiplier * 2
        if cid in backwards:
            plan.backwards_on = cycle_start + timedelta(days=rng.randint(8, 24))
        if cid in missing_ids:
            first = (cycle_start + timedelta(days=rng.randint(3, 20))) if cid == missing_ids[0] else rng.choice(days)
            plan.missing = [first + timedelta(days=k) for k in range(rng.randint(1, 4)) if first + timedelta(days=k) < LAST_DAY]

    # Behaviour: who pays how, who is behind.
    withholding = set(_pick(rng, all_ids, max(3, round(customers * 0.3))))
    prepaid_users = set(_pick(rng, [i for i in all_ids if i not in withholding], max(1, round(customers * 0.04))))
    debtors = set(_pick(rng, [i for i in all_ids if i not in withholding], max(2, round(customers * 0.03))))
    late_last = set(_pick(rng, [i for i in all_ids if i not in debtors], max(1, round(customers * 0.05))))
    partial = set(_pick(rng, [i for i in all_ids if i not in debtors and i not in late_last], max(1, customers // 200)))
    debt_from = {cid: rng.choice(["2026-06", "2026-07", "2026-08", "2026-09"]) for cid in sorted(debtors)}
    habit: dict[int, PaymentChannel] = {}
    openids: set[int] = set(_pick(rng, homes, max(2, round(customers * 0.08))))

    meter_seq = iter(range(1, 10 * customers + 10))
    bill_id = line_id = payment_id = 0
    statement_rows: list[dict[str, str]] = []
    windows = _bill_period_windows()
    chunk_size = 250
    for chunk_start in range(0, customers, chunk_size):
        chunk = rows_and_plans[chunk_start : chunk_start + chunk_size]
        customer_rows, meter_rows, bill_rows, line_rows, payment_rows = [], [], [], [], []
        reading_rows: list[ReadingValue] = []
        for row, plan in chunk:
            cid = row["id"]
            row["account_no"] = _account_no(cid, row["address"])
            if cid in withholding:
                row["withholding_agreement"] = True
                habit[cid] = PaymentChannel.BANK_WITHHOLDING
            elif cid in prepaid_users:
                habit[cid] = PaymentChannel.PREPAID
                row["prepaid_balance"] = Decimal(rng.randint(50, 600))
            elif plan.kind == "plant":
                habit[cid] = rng.choice([PaymentChannel.BANK_TRANSFER, PaymentChannel.BANK_TRANSFER, PaymentChannel.COUNTER])
            else:
                habit[cid] = rng.choices(
                    [PaymentChannel.WECHAT_PAY, PaymentChannel.ALIPAY, PaymentChannel.COUNTER, PaymentChannel.BANK_TRANSFER],
                    weights=[45, 38, 12, 5] if plan.kind == "home" else [35, 35, 15, 15])[0]
            if cid in openids:
                row["wechat_openid"] = names.wechat_openid(rng)
                summary.wechat_bound += 1
            customer_rows.append(row)
            summary.customers[row["category"].value] += 1

            meters, readings = _meters_and_readings(cid, plan, rng, lambda: next(meter_seq))
            meter_rows += meters
            summary.meters += len(meters)
            summary.replaced_meters += 1 if plan.replaced_on else 0
            reading_rows += readings
            if plan.backwards_on:
                summary.backwards_accounts.append(row["account_no"])
            if plan.missing:
                summary.missing_day_accounts.append(row["account_no"])

            infos = [MeterInfo(m["id"], m["asset_no"], m["multiplier"], m["installed_on"], m["removed_on"],
                               m["replaced_meter_id"], m["final_reading"]) for m in meters]
            attributes = tariff_attributes_of({k: row[k] for k in TariffAttributes.model_fields})
            read_days = [r.read_date for r in readings]  # generated in date order
            for period, start, end in windows:
                # The opening reading is at most a few (missing) days before the period.
                window = readings[bisect_left(read_days, start - WINDOW_LOOKBACK) : bisect_right(read_days, end)]
                consumption = compute_consumption(infos, window, start, end)
                try:
                    computed = compute(BillRequest(account_no=row["account_no"], attributes=attributes,
                                                   period_start=start, period_end=end, usage=consumption.to_usage()))
                except BillingError as exc:
                    summary.unbilled[f"{type(exc).__name__}: {exc}"] += 1
                    continue
                bill_id += 1
                issued_at = _issue_time(end)
                due = issued_at.astimezone(BEIJING).date() + timedelta(days=20)
                status, paid = _payment_outcome(cid, period, debtors, debt_from, late_last, partial)
                bill_rows.append({
                    "id": bill_id, "customer_id": cid, "period": period, "period_start": start, "period_end": end,
                    "total_kwh": computed.total_kwh, "amount": computed.total, "status": status.value,
                    "bill_no": f"{period.replace('-', '')}{row['account_no']}", "issued_at": issued_at,
                    "due_date": due, "tariff_versions": list(computed.tariff_versions), "notes": list(computed.notes),
                    "computed_at": issued_at - timedelta(days=2),
                })
                for position, line in enumerate(computed.lines, start=1):
                    line_id += 1
                    line_rows.append({"id": line_id, "bill_id": bill_id, "position": position, **line.model_dump()})
                summary.bills += 1
                summary.bill_total += computed.total
                if status is BillStatus.ISSUED:
                    summary.unpaid_bills += 1
                if paid is None or computed.total <= 0:
                    continue
                channel = habit[cid]
                delay = {PaymentChannel.BANK_WITHHOLDING: 2, PaymentChannel.PREPAID: 0}.get(channel, rng.randint(0, 25))
                paid_at = issued_at + timedelta(days=delay, hours=rng.randint(1, 11), minutes=rng.randint(0, 59))
                amount = computed.total if paid == "full" else (computed.total / 2).quantize(CENT)
                payment_id += 1
                payment = {
                    "id": payment_id, "bill_id": bill_id, "customer_id": cid, "amount": amount, "currency": "CNY",
                    "channel": channel.value, "paid_at": paid_at, "idempotency_key": f"demo-{seed}-{payment_id:07d}",
                    "external_ref": _external_ref(channel, paid_at, payment_id), "status": PaymentStatus.SUCCEEDED.value,
                }
                payment_rows.append(payment)
                summary.payments[channel.value] += 1
                if channel in (PaymentChannel.BANK_WITHHOLDING, PaymentChannel.BANK_TRANSFER):
                    value_date = paid_at.astimezone(BEIJING).date()
                    if (value_date.year, value_date.month) == tuple(map(int, STATEMENT_PERIOD.split("-"))):
                        statement_rows.append({
                            "bank_txn_id": payment["external_ref"], "value_date": value_date.isoformat(),
                            "account_no": row["account_no"], "bill_no": bill_rows[-1]["bill_no"],
                            "amount": f"{amount:.2f}", "currency": "CNY", "channel": channel.value,
                            "payer_name": row["name"],
                        })
        bulk_insert(session, Customer.__table__, customer_rows)
        bulk_insert(session, Meter.__table__, [m for m in meter_rows if m["replaced_meter_id"] is None])
        bulk_insert(session, Meter.__table__, [m for m in meter_rows if m["replaced_meter_id"] is not None])
        bulk_insert(session, Reading.__table__, reading_rows, columns=ReadingValue._fields)
        bulk_insert(session, Bill.__table__, bill_rows)
        bulk_insert(session, BillLine.__table__, line_rows)
        bulk_insert(session, Payment.__table__, payment_rows)
        summary.readings += len(reading_rows)

    summary.overdue_accounts = len(debtors | late_last | partial)
    _add_adjustments_and_work_orders(session, rng, customers)
    session.flush()
    _fix_sequences(session)
    summary.statement_path, summary.statement_exceptions = _write_statement(
        statement_rows, rng, statement_dir or var_dir() / "demo"
    )
    summary.seconds = clock.perf_counter() - started
    return summary


def _payment_outcome(cid: int, period: str, debtors: set[int], debt_from: dict[int, str], late_last: set[int],
                     partial: set[int]) -> tuple[BillStatus, str | None]:
    """(bill status, 'full' / 'half' / None): who has paid which bill."""
    if cid in debtors and period >= debt_from[cid]:
        return BillStatus.ISSUED, None
    if cid in late_last and period == LAST_BILLED:
        return BillStatus.ISSUED, None
    if cid in partial and period == LAST_BILLED:
        return BillStatus.PARTIALLY_PAID, "half"
    return BillStatus.PAID, "full"


def _write_statement(rows: list[dict[str, str]], rng: random.Random, directory: Path) -> tuple[Path, dict[str, str]]:
    """The bank's statement of 2026-09 with a duplicate deduction, a missing payment and a wrong amount."""
    rows = sorted(rows, key=lambda r: (r["value_date"], r["bank_txn_id"]))
    exceptions: dict[str, str] = {}
    withheld = [r for r in rows if r["channel"] == PaymentChannel.BANK_WITHHOLDING.value]
    if len(withheld) >= 3:
        duplicate, missing, mismatch = rng.sample(withheld, 3)
        rows.append({**duplicate, "bank_txn_id": duplicate["bank_txn_id"].replace("BWH", "BWD")})
        exceptions["duplicate_deduction"] = duplicate["bill_no"]
        rows.remove(missing)
        exceptions["missing_at_bank"] = missing["bill_no"]
        index = rows.index(mismatch)
        rows[index] = {**mismatch, "amount": f"{Decimal(mismatch['amount']) + Decimal('10.00'):.2f}"}
        exceptions["amount_mismatch"] = mismatch["bill_no"]
        rows.sort(key=lambda r: (r["value_date"], r["bank_txn_id"]))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bank_statement_{STATEMENT_PERIOD}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=STATEMENT_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path, exceptions


def _add_adjustments_and_work_orders(session: Session, rng: random.Random, customers: int) -> None:
    """A few 退补 and desk work orders, so the desk is not brand new."""
    picks = _pick(rng, list(range(1, customers + 1)), min(3, customers))
    accounts = dict(session.execute(select(Customer.id, Customer.account_no).where(Customer.id.in_(picks))).all())
    bills = dict(session.execute(
        select(Bill.customer_id, Bill.id).where(Bill.customer_id.in_(picks), Bill.period == "2026-08")).all())
    created = datetime(2026, 9, 12, 2, 30, tzinfo=UTC)
    adjustments = [
        (AdjustmentStatus.APPLIED, Decimal("-35"), "电表校验快 2.1%，退还 2026-08 多计电量"),
        (AdjustmentStatus.PENDING, Decimal("48"), "估抄少计电量，补收 48 千瓦时，待复核"),
        (AdjustmentStatus.APPROVED, Decimal("-12.5"), "换表时示数抄录错误，退还 12.5 千瓦时"),
    ]
    for cid, (status, kwh, reason) in zip(picks, adjustments, strict=False):
        session.add(Adjustment(customer_id=cid, bill_id=bills.get(cid), kwh=kwh, reason=reason, status=status,
                               created_at=created))
    orders = [
        (WorkOrderKind.DISPUTE, WorkOrderStatus.IN_PROGRESS, "客户对 2026-08 电费有异议", "客户认为本月电量偏高，要求核查"),
        (WorkOrderKind.METER_CHECK, WorkOrderStatus.RESOLVED, "申请电表校验", "电表现场校验，误差在允许范围内"),
        (WorkOrderKind.COMPLAINT, WorkOrderStatus.CLOSED, "营业厅排队时间过长", "已致电回访，客户满意"),
    ]
    for n, (cid, (kind, status, title, description)) in enumerate(zip(picks, orders, strict=False), start=1):
        session.add(WorkOrder(
            no=f"WO20260912{n:04d}", kind=kind, account_no=accounts.get(cid), bill_id=bills.get(cid),
            period="2026-08", status=status, priority=WorkOrderPriority.NORMAL, title=title,
            description=description, contact=None, channel="phone", created_at=created,
            sla_due_at=created + timedelta(days=5),
            resolved_at=created + timedelta(days=2) if status in (WorkOrderStatus.RESOLVED, WorkOrderStatus.CLOSED) else None,
            payload={"source": "demo"},
        ))


def iter_statement(path: Path) -> Iterable[dict[str, str]]:
    """The rows of a demo bank statement (for tests and the reconciliation demo)."""
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)
