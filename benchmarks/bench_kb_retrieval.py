"""Knowledge-base search latency: p50/p95 of one `search` call over the retrieval eval queries.

Target (issue 3): p95 <= 30 ms for a single query on this 2-core machine, with hit@3 >= 0.95.
Builds (or incrementally syncs) a local Chroma store under var/eval-chroma first.

    .venv/bin/python benchmarks/bench_kb_retrieval.py [--embedder use-m3|e5-small|st:/path] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evals.retrieval.runner import TARGET_P95_MS, run_retrieval_eval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedder", default="use-m3")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reports = [run_retrieval_eval(embedder=args.embedder) for _ in range(args.rounds)]
    p50 = statistics.median(r.p50_ms for r in reports)
    p95 = statistics.median(r.p95_ms for r in reports)
    print(f"{reports[0].variant}: {reports[0].queries} queries x {args.rounds} rounds")
    print(f"hit@1 {reports[0].hit_at_1:.3f}  hit@3 {reports[0].hit_at_3:.3f}  MRR {reports[0].mrr:.3f}  "
          f"local-brain answer right {reports[0].answered:.3f} ({reports[0].not_covered} declined as not covered)")
    print(f"median of rounds: p50 {p50:.1f} ms  p95 {p95:.1f} ms  (target p95 <= {TARGET_P95_MS:.0f} ms: "
          f"{'met' if p95 <= TARGET_P95_MS else 'NOT met'})")
    cpu50 = statistics.median(r.cpu_p50_ms for r in reports)
    cpu95 = statistics.median(r.cpu_p95_ms for r in reports)
    print(f"CPU time per query: p50 {cpu50:.1f} ms  p95 {cpu95:.1f} ms (wall time on an idle machine)")


if __name__ == "__main__":
    main()
