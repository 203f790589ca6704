"""The partitioned billing cycle on a real PostgreSQL with 1 and 2 worker processes: bills/s and scaling.

Seeds a throw-away PostgreSQL cluster (tests/servers/postgres.py) once with bench_cycle.py's
customers (80 % tiered residential, 10 % TOU, 10 % two-part C&I) and last month's and last year's
bills, as a template database; each measured run gets a fresh copy (CREATE DATABASE … TEMPLATE),
is prepared (`cycle.partitioned.prepare`) and worked by N forked processes, each running the real
worker loop (`cycle.partitioned.work`: claim with SKIP LOCKED, chunk, commit). By default the read
step is bench_cycle.py's in-memory usage (the figure then compares with bench_cycle's one-process
SQLite one); `--from-readings` seeds 32 days of readings per customer
of every register its tariff bills (TOU periods; for C&I also reactive energy and maximum demand),
about 61 a customer, and bills from them: every customer must be billed, none blocked.

Prints per N: wall time, bills/s in total and per worker, the workers' CPU-seconds, PostgreSQL's
CPU-seconds (its postmaster and backends, from /proc) and the load average, and the scaling ratio
rate(N)/rate(1). Then CPU per bill in a worker and in PostgreSQL, and from them the core-hours a
38-million-account month needs — the figure that carries to a machine with cores to spare, since
here workers, PostgreSQL and other jobs share 2 cores and wall-time scaling mostly measures them —
and the hours on K workers at the measured per-worker wall rate and scaling (never above linear).

    .venv/bin/python benchmarks/bench_cycle_workers.py [--customers 100000] [--workers 1 2] [--from-readings]
        [--profile PREFIX]   # cProfile each worker (slow; to find hot spots, not to measure)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench_cycle import PERIOD, baseline_kwh, seed, synthetic_usage  # noqa: E402
from billing_core.cycle.partitioned import prepare, status, work  # noqa: E402
from billing_core.cycle.run import default_usage_loader  # noqa: E402
from billing_core.db.bulk import bulk_insert  # noqa: E402
from billing_core.db.engine import make_engine  # noqa: E402
from billing_core.db.migrate import upgrade  # noqa: E402
from billing_core.db.models import Customer, Meter, Reading, ReadingRegister, WorkOrder  # noqa: E402
from billing_core.tariffs.library import get_library  # noqa: E402

ACCOUNTS = 38_000_000  # Guangdong's accounts (issue 18)


# Each register's share of a day's active energy, per kind of customer (the registers its tariff
# bills): tiered residential reads the total only; residential TOU peak / flat / valley; two-part
# C&I 尖峰平谷, reactive energy (power factor) and the day's maximum demand.
_SHARES = {
    "residential": {},
    "tou": {ReadingRegister.PEAK: Decimal("0.3"), ReadingRegister.FLAT: Decimal("0.4"),
            ReadingRegister.VALLEY: Decimal("0.3")},
    "ci": {ReadingRegister.CRITICAL_PEAK: Decimal("0.05"), ReadingRegister.PEAK: Decimal("0.25"),
           ReadingRegister.FLAT: Decimal("0.4"), ReadingRegister.VALLEY: Decimal("0.3"),
           ReadingRegister.REACTIVE_TOTAL: Decimal("0.4")},
}
_MILLI = Decimal("0.001")


def seed_readings(session: Session) -> dict[str, int]:
    """One meter per customer and the daily readings (30 June – 31 July) its tariff needs, by COPY.

    Every customer gets the active total; TOU customers their period registers as well and C&I
    customers also reactive energy and maximum demand, so every class is billed from readings
    (C&I at 100× a household's energy, as in their history). Returns the readings per register.
    """
    kinds = {cid: ("ci" if str(category) == "ci_two_part" else "tou" if tou else "residential")
             for cid, category, tou in session.execute(
                 select(Customer.id, Customer.category, Customer.residential_tou).order_by(Customer.id))}
    ids = list(kinds)
    counts: dict[str, int] = {}
    days = [date(2026, 6, 30) + timedelta(days=day) for day in range(32)]
    for offset in range(0, len(ids), 10_000):
        chunk = ids[offset : offset + 10_000]
        bulk_insert(session, Meter.__table__, [
            (cid, f"M{cid:010d}", cid, Decimal("1"), date(2025, 1, 1), None, None, None) for cid in chunk],
            ("id", "asset_no", "customer_id", "multiplier", "installed_on", "removed_on", "replaced_meter_id",
             "final_reading"))
        rows = []
        for cid in chunk:
            kind = kinds[cid]
            per_day = Decimal(baseline_kwh(cid) * (100 if kind == "ci" else 1)) / 30
            registers = [(ReadingRegister.ACTIVE_TOTAL, per_day)]
            registers += [(register, per_day * share) for register, share in _SHARES[kind].items()]
            for register, step in registers:
                value = Decimal(1000)
                for day in days:
                    rows.append((cid, day, register, value.quantize(_MILLI), "daily"))
                    value += step
            if kind == "ci":  # the day's maximum demand in kW: a level, not a counter
                demand = (per_day / 24 * 3).quantize(_MILLI)
                rows.extend((cid, day, ReadingRegister.MAX_DEMAND, demand, "daily") for day in days[1:])
        for row in rows:
            counts[row[2].value] = counts.get(row[2].value, 0) + 1
        bulk_insert(session, Reading.__table__, rows, ("meter_id", "read_date", "register", "value", "source"))
    session.commit()
    return counts


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU of the cluster so far: the postmaster, its live children, and (cutime) its exited backends."""
    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])

    def fields(pid: int) -> list[str]:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()  # after "pid (comm) "

    total = sum(int(v) for v in fields(postmaster)[11:15])  # utime stime cutime cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != postmaster:
            try:
                stat = fields(int(entry.name))
            except (OSError, ValueError):
                continue
            if int(stat[1]) == postmaster:  # ppid
                total += int(stat[11]) + int(stat[12])
    return total / ticks


def _worker(url: str, readings: bool, profile: str | None = None) -> None:
    get_library()
    loader = default_usage_loader if readings else synthetic_usage
    if profile is None:
        work(PERIOD, url=url, poll=0.05, usage_loader=loader)
        return
    import cProfile

    with cProfile.Profile() as profiler:  # where a worker's CPU goes (read with python -m pstats)
        work(PERIOD, url=url, poll=0.05, usage_loader=loader)
    profiler.dump_stats(f"{profile}.{os.getpid()}")


def measure(url: str, workers: int, readings: bool, partition_size: int, data_dir: Path,
            profile: str | None = None) -> tuple[float, int, float, float]:
    """(wall seconds, bills computed, workers' CPU-seconds, PostgreSQL's CPU-seconds) of one run."""
    engine = make_engine(url)
    with Session(engine) as session:
        prepare(session, PERIOD, issue_date=date(2026, 8, 2), partition_size=partition_size)
        session.commit()
    context = multiprocessing.get_context("fork")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pg_before = postgres_cpu_seconds(data_dir)
    started = time.perf_counter()
    processes = [context.Process(target=_worker, args=(url, readings, profile)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    wall = time.perf_counter() - started
    pg_cpu = postgres_cpu_seconds(data_dir) - pg_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with Session(engine) as session:
        state = status(session, PERIOD)
        if not state.finished or any(p.exitcode for p in processes):
            raise SystemExit(f"run with {workers} workers did not finish: {state.summary()}")
        bills, blocked = state.result.bills_computed, state.result.blocked
        assert bills == session.scalar(select(func.count()).select_from(Customer)) - blocked
        if readings and blocked:  # every class has the registers it needs: none may be blocked
            why = session.execute(select(WorkOrder.title, func.count()).where(WorkOrder.bill_id.is_(None))
                                  .group_by(WorkOrder.title).order_by(func.count().desc()).limit(5)).all()
            raise SystemExit(f"{blocked:,} customers blocked from readings, e.g. "
                             + "; ".join(f"{count:,} × {title}" for title, count in why))
    engine.dispose()
    return wall, bills, cpu, pg_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--partition-size", type=int, default=2000)
    parser.add_argument("--from-readings", action="store_true", help="bill from daily readings, not in-memory usage")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="cProfile each worker into PREFIX.<pid> (slows the run: for finding hot spots only)")
    args = parser.parse_args()
    get_library()
    from tests.servers.postgres import postgres_server

    with postgres_server() as server:
        template = server.create_database("bench_template")
        upgrade(template)
        engine = make_engine(template)
        started = time.perf_counter()
        with Session(engine) as session:
            seed(session, args.customers)
            counts = seed_readings(session) if args.from_readings else {}
        # Vacuumed, analysed and checkpointed now, so neither autovacuum working through the seeded
        # rows (millions of readings) nor their checkpoint runs during a measured run, whose
        # PostgreSQL CPU would then include them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (FREEZE, ANALYZE)")
            connection.exec_driver_sql("CHECKPOINT")
        engine.dispose()
        source = (f"{sum(counts.values()) / args.customers:.1f} daily readings each: "
                  + ", ".join(f"{register} {count:,}" for register, count in counts.items())
                  if args.from_readings else "in-memory usage")
        print(f"seeded {args.customers:,} customers ({source}) on PostgreSQL in {time.perf_counter() - started:.1f} s",
              flush=True)
        rates: dict[int, float] = {}
        cpu_per_bill: list[tuple[float, float]] = []  # (worker, PostgreSQL) CPU-seconds per bill
        for workers in args.workers:
            name = f"bench_w{workers}"
            server._admin(f'CREATE DATABASE "{name}" TEMPLATE "bench_template"')
            wall, bills, cpu, pg_cpu = measure(server.url(name), workers, args.from_readings, args.partition_size,
                                               server.data_dir, args.profile)
            rates[workers] = bills / wall
            cpu_per_bill.append((cpu / bills, pg_cpu / bills))
            print(f"{workers} worker(s): {bills:,} bills in {wall:.1f} s wall = {bills / wall:,.0f} bills/s, "
                  f"{bills / wall / workers:,.0f} per worker; workers' CPU {cpu:.1f} s = {bills / cpu:,.0f} "
                  f"bills per worker CPU-second; PostgreSQL CPU {pg_cpu:.1f} s; load average "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            server.drop_database(name)
        worker_ms = min(w for w, _ in cpu_per_bill) * 1000
        pg_ms = min(p for _, p in cpu_per_bill) * 1000
        print(f"CPU per bill: {worker_ms:.3f} ms in a worker, {pg_ms:.3f} ms in PostgreSQL (best of the runs); "
              f"38 M accounts = {ACCOUNTS * worker_ms / 1000 / 3600:.1f} worker core-hours + "
              f"{ACCOUNTS * pg_ms / 1000 / 3600:.1f} PostgreSQL core-hours")
        if 1 in rates:
            per_worker = rates[1]
            for workers, rate in rates.items():
                if workers != 1:
                    print(f"scaling {workers} workers / 1: {rate / per_worker:.2f} (linear = {workers})")
            # Scaling efficiency measured at the largest N, never assumed above linear.
            ratio = min(1.0, (rates[max(rates)] / per_worker) / max(rates)) if max(rates) > 1 else 1.0
            for k in (8, 16, 32, 64):
                hours = ACCOUNTS / (per_worker * k * ratio) / 3600
                print(f"38 M accounts on {k} workers at {per_worker:,.0f} bills/s each and {ratio:.0%} scaling "
                      f"efficiency: {hours:.1f} h")


if __name__ == "__main__":
    main()
