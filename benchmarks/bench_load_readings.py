"""Rows per second of `powerdesk billing load-readings` (billing_core.readings_csv) on SQLite and PostgreSQL.

Writes a month's CSV of daily active-total readings (31 rows per meter, 1 % of rows bad: unknown
meters, bad dates, readings going backwards), then loads it into a fresh database — SQLite, and a
throw-away real PostgreSQL cluster (tests/servers/postgres.py) where good rows go in with COPY —
and prints rows/s of wall and of this process's CPU (PostgreSQL's own CPU is not counted). A
second load of the same file measures the idempotent re-run. No target is set yet: the figure
tells how long a province's month of readings (38 M meters × 31 days × registers) takes.

    .venv/bin/python benchmarks/bench_load_readings.py [--meters 20000] [--backends sqlite postgresql]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.orm import Session  # noqa: E402

from billing_core.db.bulk import bulk_insert  # noqa: E402
from billing_core.db.engine import make_engine  # noqa: E402
from billing_core.db.migrate import upgrade  # noqa: E402
from billing_core.db.models import Customer, Meter  # noqa: E402
from billing_core.readings_csv import load_readings  # noqa: E402

FIRST = date(2026, 7, 1)
DAYS = 31


def write_csv(path: Path, meters: int) -> int:
    """The month's file; returns the number of bad rows written."""
    rng = random.Random(18)
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("asset_no,date,register,value\n")
        for n in range(1, meters + 1):
            value = Decimal(1000 + n % 500)
            per_day = Decimal(n % 40 + 3) / 4
            for offset in range(DAYS):
                value += per_day
                asset, day, shown = f"M{n:010d}", (FIRST + timedelta(days=offset)).isoformat(), f"{value:.3f}"
                roll = rng.random()
                if roll < 0.003:
                    asset, bad = f"X{n:010d}", bad + 1
                elif roll < 0.006:
                    day, bad = "2026-07-32", bad + 1
                elif roll < 0.01:
                    shown, bad = "1.000", bad + 1
                out.write(f"{asset},{day},active_total,{shown}\n")
    return bad


def seed_meters(url: str, meters: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        for start in range(0, meters, 20_000):
            numbers = range(start + 1, min(start + 20_000, meters) + 1)
            bulk_insert(session, Customer.__table__, [{
                "id": n, "account_no": f"44{n:010d}", "name": f"客户{n}", "phone": None, "address": f"{n}号",
                "category": "residential", "household_type": "ordinary", "residential_tou": False,
                "voltage_level": "<1kV", "purchase_mode": "catalog", "agency_price_multiplier": Decimal("1"),
                "region": "guangzhou", "withholding_agreement": False, "prepaid_balance": Decimal("0"),
                "wechat_openid": None, "created_at": now, "id_last4": None, "capacity_kva": None,
                "basic_charge_mode": None, "contracted_demand_kw": None, "pf_standard": None,
            } for n in numbers])
            bulk_insert(session, Meter.__table__, [{
                "id": n, "asset_no": f"M{n:010d}", "customer_id": n, "multiplier": Decimal("1"),
                "installed_on": date(2025, 1, 1), "removed_on": None, "replaced_meter_id": None,
                "final_reading": None} for n in numbers])
        session.commit()
    engine.dispose()


def measure(url: str, path: Path, rows: int, label: str) -> None:
    engine = make_engine(url)
    with Session(engine) as session:
        for run in ("first load", "re-run"):
            started, cpu = time.perf_counter(), time.process_time()
            result = load_readings(session, path)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(f"{label} {run}: {result.summary()} {wall:.1f} s wall = {rows / wall:,.0f} rows/s; "
                  f"{cpu:.1f} s CPU here = {rows / cpu:,.0f} rows per CPU-second", flush=True)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=20_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-readings-") as tmp:
        path = Path(tmp) / "readings.csv"
        bad = write_csv(path, args.meters)
        rows = args.meters * DAYS
        print(f"{rows:,} rows ({bad:,} bad) for {args.meters:,} meters, {path.stat().st_size / 2**20:.1f} MiB")
        if "sqlite" in args.backends:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            seed_meters(url, args.meters)
            measure(url, path, rows, "SQLite")
        if "postgresql" in args.backends:
            from tests.servers.postgres import postgres_server

            with postgres_server() as server:
                url = server.create_database("bench_readings")
                seed_meters(url, args.meters)
                measure(url, path, rows, "PostgreSQL (COPY)")


if __name__ == "__main__":
    main()
