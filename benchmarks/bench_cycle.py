"""A monthly billing cycle for 100,000 synthetic customers on SQLite: compute + verify + store.

Seeds a fresh SQLite database (migrated with Alembic) with customers — 80 % tiered residential,
10 % residential TOU, 10 % two-part C&I — and last month's and last year's bills (so the
consumption-change rules have history), then times `run_cycle` for one period, commit included.
The read step comes from an in-memory usage source here (the meter-data load is measured on its
own with --from-readings, which seeds daily readings for that many customers and runs the cycle
on them through `consumption.load_consumptions`). Target: the whole cycle within 60 s.

    .venv/bin/python benchmarks/bench_cycle.py [--customers 100000] [--from-readings 5000] [--history-days 61]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from billing_core.bill_types import TouUsage, Usage
from billing_core.db.bulk import bulk_insert
from billing_core.cycle.run import run_cycle
from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade
from billing_core.db.models import Bill, BillLine, BillStatus, Customer, Meter, Reading, ReadingRegister, WorkOrder
from billing_core.db.operations_models import OutboxNotification
from billing_core.tariffs.library import get_library

PERIOD = "2026-07"
START, END = date(2026, 7, 1), date(2026, 7, 31)


def peak_rss_mib() -> float:
    """The process's high-water resident memory (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def customer_rows(count: int, offset: int = 0) -> list[dict[str, object]]:
    rng = random.Random(20260701 + offset)
    rows = []
    for n in range(offset + 1, offset + count + 1):
        kind = rng.random()
        row: dict[str, object] = {
            "account_no": f"44{n:010d}", "name": f"客户{n}", "phone": f"138{n:08d}", "address": f"广州市{n}号",
            "category": "residential", "household_type": "ordinary", "residential_tou": False,
            "voltage_level": "<1kV", "purchase_mode": "catalog", "agency_price_multiplier": Decimal("1"),
            "region": "guangzhou", "withholding_agreement": rng.random() < 0.3, "prepaid_balance": Decimal("0"),
            "wechat_openid": f"wx{n}" if rng.random() < 0.5 else None, "created_at": datetime.now(UTC),
            "id_last4": None, "capacity_kva": None, "basic_charge_mode": None, "contracted_demand_kw": None,
            "pf_standard": None,
        }
        if kind < 0.8:
            row["household_type"] = "many_person" if rng.random() < 0.1 else "ordinary"
        elif kind < 0.9:
            row["residential_tou"] = True
        else:
            contract = Decimal(rng.randint(200, 2000))
            row.update(category="ci_two_part", voltage_level="1-10kV", purchase_mode="agency",
                       capacity_kva=contract * 2, basic_charge_mode="capacity", contracted_demand_kw=contract,
                       pf_standard=Decimal("0.90"))
        rows.append(row)
    return rows


def seed(session: Session, count: int) -> None:
    for start in range(0, count, 20_000):
        bulk_insert(session, Customer.__table__, customer_rows(min(20_000, count - start), start))
    kinds = {row[0]: str(row[1]) for row in session.execute(select(Customer.id, Customer.category))}
    history = []
    for cid, category in sorted(kinds.items()):
        scale = 100 if category == "ci_two_part" else 1  # C&I users take 100× a household's energy
        for period, first, last in (("2026-06", date(2026, 6, 1), date(2026, 6, 30)),
                                    ("2025-07", date(2025, 7, 1), date(2025, 7, 31))):
            history.append({"customer_id": cid, "period": period, "period_start": first, "period_end": last,
                            "total_kwh": Decimal(baseline_kwh(cid) * scale), "amount": Decimal("100.00"),
                            "status": BillStatus.PAID, "tariff_versions": [], "notes": [],
                            "computed_at": datetime.now(UTC), "bill_no": None, "issued_at": None,
                            "due_date": None})
        if len(history) >= 20_000:
            bulk_insert(session, Bill.__table__, history)
            history = []
    if history:
        bulk_insert(session, Bill.__table__, history)
    session.commit()


def baseline_kwh(cid: int) -> int:
    return 150 + (cid * 7919) % 450


def synthetic_usage(session: Session, ids: Sequence[int], start: date, end: date) -> dict[int, Usage]:
    """This month's usage: about last month's, 3 % of customers with a jump worth a review."""
    categories = {row[0]: (row[1], row[2]) for row in session.execute(
        select(Customer.id, Customer.category, Customer.residential_tou).where(Customer.id.in_(ids)))}
    usages: dict[int, Usage] = {}
    for cid in ids:
        rng = random.Random(cid)
        factor = Decimal(rng.choice([2, 3])) if rng.random() < 0.03 else Decimal(rng.randint(85, 115)) / 100
        kwh = (Decimal(baseline_kwh(cid)) * factor).quantize(Decimal("1"))
        category, tou = categories[cid]
        if str(category) == "ci_two_part":
            scale = Decimal(100)
            usages[cid] = Usage(
                tou=TouUsage(critical_peak=kwh * 5, peak=kwh * 25, flat=kwh * 40, valley=kwh * 30),
                reactive_kvarh=kwh * scale * Decimal("0.4"), max_demand_kw=kwh,
            )
        elif tou:
            usages[cid] = Usage(tou=TouUsage(peak=kwh * Decimal("0.3"), flat=kwh * Decimal("0.4"),
                                             valley=kwh * Decimal("0.3")))
        else:
            usages[cid] = Usage(total_kwh=kwh)
    return usages


def seed_readings(session: Session, count: int, history_days: int = 0) -> list[int]:
    """Meters and daily active-total readings (30 June – 31 July) for `count` new customers.

    `history_days` adds that many earlier daily readings per meter, as a real meter has: the read
    step must not pay for them (only the reading that opens the period counts)."""
    existing = session.scalar(select(func.count()).select_from(Customer)) or 0
    session.execute(insert(Customer), [dict(r, category="residential", residential_tou=False,
                                            household_type="ordinary", voltage_level="<1kV",
                                            purchase_mode="catalog", capacity_kva=None, basic_charge_mode=None,
                                            contracted_demand_kw=None, pf_standard=None)
                                       for r in customer_rows(count, existing)])
    ids = list(session.scalars(select(Customer.id).where(Customer.id > existing).order_by(Customer.id)))
    session.execute(insert(Meter), [{"asset_no": f"M{cid:010d}", "customer_id": cid, "multiplier": Decimal("1"),
                                     "installed_on": date(2025, 1, 1)} for cid in ids])
    meters = dict(session.execute(select(Meter.customer_id, Meter.id).where(Meter.customer_id.in_(ids))).all())
    rows = []
    for cid in ids:
        per_day = Decimal(baseline_kwh(cid)) / 30
        value = Decimal(1000)
        day = date(2026, 6, 30) - timedelta(days=history_days)
        while day <= END:
            rows.append({"meter_id": meters[cid], "read_date": day, "register": ReadingRegister.ACTIVE_TOTAL,
                         "value": value.quantize(Decimal("0.001")), "source": "daily"})
            value += per_day
            day += timedelta(days=1)
        if len(rows) >= 50_000:
            session.execute(insert(Reading), rows)
            rows = []
    if rows:
        session.execute(insert(Reading), rows)
    session.commit()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--from-readings", type=int, default=5_000)
    parser.add_argument("--history-days", type=int, default=0,
                        help="daily readings per meter before 30 June (a real meter's history)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    get_library()

    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        with Session(engine) as session:
            started = time.perf_counter()
            seed(session, args.customers)
            seeded = time.perf_counter() - started
            rss_before = peak_rss_mib()
            started, cpu_started = time.perf_counter(), time.process_time()
            result = run_cycle(session, PERIOD, issue_date=date(2026, 8, 2), usage_loader=synthetic_usage,
                               progress=args.progress)
            session.commit()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            lines = session.scalar(select(func.count()).select_from(BillLine))
            orders = session.scalar(select(func.count()).select_from(WorkOrder))
            messages = session.scalar(select(func.count()).select_from(OutboxNotification))
        rss_after = peak_rss_mib()
        print(f"seeded {args.customers:,} customers and 2 months of history in {seeded:.1f} s")
        print(f"cycle {PERIOD}: {result.bills_computed:,} bills ({lines:,} lines), {result.bills_issued:,} issued, "
              f"{result.bills_held:,} held, {orders:,} review work orders, {messages:,} outbox messages")
        print(f"cycle time {elapsed:.1f} s wall = {result.bills_computed / elapsed:,.0f} bills/s "
              f"(compute + verify + store, commit included; target 60 s); {cpu:.1f} s of CPU in this process "
              f"= {result.bills_computed / cpu:,.0f} bills per CPU-second (wall > CPU when the machine is shared)")
        print(f"peak RSS {rss_after:.0f} MiB (before the cycle {rss_before:.0f} MiB)")
        engine.dispose()

    if args.from_readings:
        with tempfile.TemporaryDirectory(prefix="bench-cycle-readings-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            engine = make_engine(url)
            with Session(engine) as session:
                seed_readings(session, args.from_readings, args.history_days)
                started, cpu_started = time.perf_counter(), time.process_time()
                result = run_cycle(session, PERIOD, issue_date=date(2026, 8, 2))
                session.commit()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            readings = args.from_readings * (32 + args.history_days)
            print(f"with the read step from {readings:,} daily readings: {result.bills_computed:,} "
                  f"bills in {elapsed:.1f} s = {result.bills_computed / elapsed:,.0f} bills/s, "
                  f"{cpu:.1f} s of CPU = {result.bills_computed / cpu:,.0f} bills per CPU-second "
                  f"({result.bills_issued:,} issued, {result.bills_held:,} held, {result.blocked:,} blocked)")
            engine.dispose()


if __name__ == "__main__":
    main()
