"""Suite figures: pass^k as tau-bench defines it, and latency percentiles.

pass^k is the chance that k independent trials of a task *all* succeed, estimated without bias
from n ≥ k trials with c successes as C(c, k) / C(n, k), then averaged over tasks. pass^1 is
the plain success rate; pass^k falls as k grows unless the agent is consistent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pass_hat_k_task(successes: int, trials: int, k: int) -> float:
    """C(successes, k) / C(trials, k) for one task."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"successes: {successes} of {trials} trials is impossible")
    if not 1 <= k <= trials:
        raise ValueError(f"k: must be between 1 and the number of trials ({trials}), got {k}")
    return math.comb(successes, k) / math.comb(trials, k)


def pass_hat_k(results: Sequence[tuple[int, int]], k: int) -> float:
    """pass^k over tasks, each given as (successes, trials)."""
    if not results:
        raise ValueError("results: no tasks")
    return sum(pass_hat_k_task(c, n, k) for c, n in results) / len(results)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between closest ranks; 0 for no data."""
    if not values:
        return 0.0
    if not 0 <= q <= 100:
        raise ValueError(f"q: must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
