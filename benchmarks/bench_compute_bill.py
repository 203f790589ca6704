"""Throughput of `compute_bill` on a mix of residential (tiered, TOU) and two-part C&I bills.

Single process, requests validated beforehand (as the billing cycle does when it reads them),
so the figure is the engine's own speed. Prints bills/s as the median of several runs and the
peak memory of one run. Target: >= 5,000 bills/s on the 2-core development machine.

    .venv/bin/python benchmarks/bench_compute_bill.py [--bills 20000] [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import time
import tracemalloc
from datetime import date, timedelta
from decimal import Decimal

from billing_core.bill_types import BillRequest
from billing_core.tariffs.compute import compute_bill
from billing_core.tariffs.library import get_library

MONTHS = [(2025, m) for m in range(10, 13)] + [(2026, m) for m in range(1, 11)]


def _month_period(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    end = (date(year + (month == 12), month % 12 + 1, 1)) - timedelta(days=1)
    return start, end


def make_requests(count: int, seed: int = 20251001) -> list[BillRequest]:
    """A reproducible mix: 60 % tiered residential, 20 % residential TOU, 20 % two-part C&I."""
    rng = random.Random(seed)
    requests = []
    for index in range(count):
        year, month = rng.choice(MONTHS)
        start, end = _month_period(year, month)
        if rng.random() < 0.1:  # some periods straddle a month (and maybe a season) change
            start, end = start + timedelta(days=14), end + timedelta(days=14)
        kind = rng.random()
        if kind < 0.6:
            household = rng.choice(["ordinary", "ordinary", "ordinary", "many_person", "shared_meter"])
            payload = {
                "account_no": f"R{index:08d}",
                "attributes": {"category": "residential", "household_type": household},
                "period_start": start, "period_end": end,
                "usage": {"total_kwh": str(rng.randint(0, 1200))},
            }
        elif kind < 0.8:
            payload = {
                "account_no": f"T{index:08d}",
                "attributes": {"category": "residential", "residential_tou": True},
                "period_start": start, "period_end": end,
                "usage": {"tou": {p: str(rng.randint(0, 400)) for p in ("peak", "flat", "valley")}},
            }
        else:
            demand = rng.random() < 0.5
            contract = Decimal(rng.randint(200, 2000))
            payload = {
                "account_no": f"C{index:08d}",
                "attributes": {
                    "category": "ci_two_part", "purchase_mode": "agency", "voltage_level": "1-10kV",
                    "capacity_kva": str(contract * 2), "basic_charge_mode": "demand" if demand else "capacity",
                    "contracted_demand_kw": str(contract), "pf_standard": "0.90",
                },
                "period_start": start, "period_end": end,
                "usage": {
                    "tou": {p: str(rng.randint(0, 200_000)) for p in ("critical_peak", "peak", "flat", "valley")},
                    "reactive_kvarh": str(rng.randint(0, 150_000)),
                    "max_demand_kw": str(contract * Decimal(rng.uniform(0.6, 1.3)).quantize(Decimal("0.1"))),
                },
            }
        requests.append(BillRequest.model_validate(payload))
    return requests


def run_once(requests: list[BillRequest]) -> tuple[float, float]:
    """Bills per second by wall clock and by this process's CPU time (the machine is shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for request in requests:
        compute_bill(request)
    return len(requests) / (time.perf_counter() - wall), len(requests) / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="5,000 bills, 3 runs: a before/after check")
    args = parser.parse_args()
    if args.quick:
        args.bills, args.runs = 5_000, 3
    get_library()  # loading the tariff files is start-up cost, not per-bill cost
    requests = make_requests(args.bills)
    run_once(requests[:500])  # warm the derived-price caches
    runs = [run_once(requests) for _ in range(args.runs)]
    rates = [wall for wall, _ in runs]
    cpu_rates = [cpu for _, cpu in runs]
    payloads = [r.model_dump() for r in requests[:5_000]]
    started = time.perf_counter()
    for payload in payloads:
        compute_bill(BillRequest.model_validate(payload))
    with_validation = len(payloads) / (time.perf_counter() - started)
    tracemalloc.start()
    kept = [compute_bill(r) for r in requests[:5_000]]  # a cycle keeps its bills until they are saved
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lines = sum(len(b.lines) for b in kept) / len(kept)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"compute_bill: {statistics.median(rates):,.0f} bills/s wall clock (median of {args.runs} runs of {args.bills:,} "
          f"bills; min {min(rates):,.0f}, max {max(rates):,.0f}); {statistics.median(cpu_rates):,.0f} bills per CPU-second; "
          f"{lines:.1f} lines per bill on average")
    print(f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"with request validation from dicts: {with_validation:,.0f} bills/s")
    print(f"peak traced memory computing and keeping {len(kept):,} bills: {peak / 1024 / 1024:.1f} MiB; "
          f"process max RSS {max_rss:.0f} MiB")


if __name__ == "__main__":
    main()
