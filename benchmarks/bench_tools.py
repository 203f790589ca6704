"""Latency of one audited tool call (`tools.registry.call_tool`) on SQLite, per tool.

Each call validates its arguments, runs the tool for a verified principal and commits one audit
row; the audit commit (an fsync in SQLite's WAL with synchronous=FULL) is most of the time.
Prints p50/p95 in milliseconds. No target of its own: the agent's turn budget (p95 <= 20 ms for
the local brain) includes the tool calls of the turn, so this says how much of it they take.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_tools.py [--calls 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from sqlalchemy.orm import sessionmaker

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade as upgrade_billing
from tests.tools.conftest import ACCOUNT_A, build_world
from tools.migrate import upgrade as upgrade_tools
from tools.registry import call_tool

CALLS = (
    ("lookup_bill", {"latest": 3}),
    ("explain_bill", {"period": "2026-05"}),
    ("payment_status", {}),
    ("verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    options = parser.parse_args()
    url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-tools-')}/powerdesk.db"
    upgrade_billing(url)
    upgrade_tools(url)
    engine = make_engine(url)
    world = build_world(sessionmaker(bind=engine, expire_on_commit=False))
    seed = world.ctx("bench")
    call_tool(seed, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    for name, arguments in CALLS:
        times = []
        for index in range(options.calls):
            ctx = world.ctx(f"bench-{name}-{index % 50}")
            ctx.principal = seed.principal
            started = time.perf_counter()
            call_tool(ctx, name, arguments)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        median = statistics.median(times)
        print(f"{name:16s} p50 {median:6.2f} ms   p95 {p95:6.2f} ms   ({options.calls} calls)")
    engine.dispose()


if __name__ == "__main__":
    main()
