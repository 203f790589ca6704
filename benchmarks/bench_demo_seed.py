"""Seeding the demo utility: wall and CPU seconds, rows written, peak memory.

Target (issue 2): 2,000 customers "well under a minute" on this 2-core machine. CPU time is
printed next to wall time because the machine is shared; wall time alone mostly measures the
neighbours. Writes to a throw-away SQLite file (WAL, foreign keys on, as in production).

    .venv/bin/python benchmarks/bench_demo_seed.py [--customers 2000] [--seed 42] [--runs 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.orm import Session  # noqa: E402

from billing_core.db.engine import make_engine  # noqa: E402
from billing_core.cycle.run import compute_period  # noqa: E402
from billing_core.demo.seed import CYCLE_PERIOD, seed_demo  # noqa: E402
from billing_core.db.migrate import upgrade  # noqa: E402


def one_run(customers: int, seed: int, trace_memory: bool) -> tuple[float, float, float, float, int, int]:
    with tempfile.TemporaryDirectory(prefix="powerdesk-bench-seed-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        if trace_memory:
            tracemalloc.start()
        wall, cpu = time.perf_counter(), time.process_time()
        with Session(engine) as session:
            summary = seed_demo(session, customers=customers, seed=seed, statement_dir=Path(tmp))
            session.commit()
        seed_wall, seed_cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
        if trace_memory:
            tracemalloc.stop()
        wall, cpu = time.perf_counter(), time.process_time()
        with Session(engine) as session:
            cycle = compute_period(session, CYCLE_PERIOD)
            session.commit()
        cycle_wall, cycle_cpu = time.perf_counter() - wall, time.process_time() - cpu
        engine.dispose()
        print(f"  seed {seed_wall:6.1f} s wall {seed_cpu:6.1f} s CPU | {summary.readings} readings, "
              f"{summary.bills} bills | cycle {cycle.computed} bills {cycle_wall:5.1f} s wall {cycle_cpu:5.1f} s CPU"
              + (f" | seed peak traced memory {peak / 2**20:.0f} MiB" if trace_memory else ""))
        return seed_wall, seed_cpu, cycle_wall, cycle_cpu, summary.readings, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--memory", action="store_true", help="trace peak Python memory (slows the run ~2x)")
    args = parser.parse_args()
    print(f"demo seed, {args.customers} customers, {args.runs} run(s):")
    runs = [one_run(args.customers, args.seed, args.memory) for _ in range(args.runs)]
    print(f"median seed: {statistics.median(r[0] for r in runs):.1f} s wall, "
          f"{statistics.median(r[1] for r in runs):.1f} s CPU; "
          f"median 2026-10 cycle: {statistics.median(r[2] for r in runs):.1f} s wall, "
          f"{statistics.median(r[3] for r in runs):.1f} s CPU")


if __name__ == "__main__":
    main()
