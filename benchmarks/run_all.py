"""Run every PowerDesk benchmark one after another, in one process tree, and print their output.

    make bench            # or: .venv/bin/python benchmarks/run_all.py [--quick]

Each benchmark is its own script (see its docstring for options and its target). `--quick` runs
smaller sizes so the whole set finishes in a few minutes; quote figures from full runs only.
Figures are medians of the runs each script makes; run on an otherwise idle machine, since
wall time on a shared 2-core machine mostly measures the neighbours (the scripts print CPU time too).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, full-size arguments, quick arguments)
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("bench_compute_bill.py", [], ["--bills", "5000", "--runs", "3"]),
    ("bench_cycle.py", [], ["--customers", "10000", "--from-readings", "1000"]),
    ("bench_cycle_workers.py", [], ["--customers", "10000"]),
    # Issue 18's target is from readings: every class billed from its registers, none blocked.
    ("bench_cycle_workers.py", ["--from-readings"], ["--customers", "10000", "--from-readings"]),
    ("bench_demo_seed.py", [], ["--customers", "300"]),
    ("bench_forecast.py", [], ["--demo-customers", "300", "--customers", "10000"]),
    ("bench_load_readings.py", [], ["--meters", "2000"]),
    ("bench_kb_retrieval.py", [], ["--rounds", "1"]),
    ("bench_nlu.py", [], ["--messages", "300", "--no-cv"]),
    ("bench_negative_emotion.py", [], ["--calls", "2000"]),
    ("bench_voc_topics.py", [], ["--messages", "3000", "--method", "tfidf"]),
    ("bench_tools.py", [], ["--calls", "50"]),
    ("bench_agent_turns.py", [], ["--turns", "300"]),
    ("bench_llm_stream.py", [], ["--turns", "5"]),
    ("bench_rate_limit.py", [], ["--calls", "2000", "--rounds", "3"]),
    ("bench_outbox.py", [], ["--messages", "3000"]),
    ("bench_cx_tags.py", [], ["--demo", "300", "--generated", "5000"]),
    ("bench_chat_replicas.py", ["--kill-replica"], ["--conversations", "20", "--concurrency", "4", "--customers", "30",
                                        "--kill-replica"]),
    ("chat_load.py", [], ["--conversations", "50", "--rate", "50", "--duration", "15", "--warmup", "3",
                                   "--customers", "300"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", default=None, help="script names to run")
    args = parser.parse_args()
    failures = 0
    for script, full, quick in BENCHMARKS:
        if args.only and script not in args.only:
            continue
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n=== {script} {' '.join(command[2:])}", flush=True)
        started = time.perf_counter()
        result = subprocess.run(command, cwd=HERE.parent)
        print(f"=== {script}: exit {result.returncode}, {time.perf_counter() - started:.1f} s", flush=True)
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
