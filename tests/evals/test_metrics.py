"""pass^k and percentiles: the figures the suite is judged by."""

from __future__ import annotations

import math

import pytest

from evals.metrics import pass_hat_k, pass_hat_k_task, percentile


def test_pass_hat_k_is_comb_ratio_per_task():
    # 3 successes of 4 trials: pass^1 = 3/4, pass^2 = C(3,2)/C(4,2) = 3/6, pass^4 = 0.
    assert pass_hat_k_task(3, 4, 1) == pytest.approx(0.75)
    assert pass_hat_k_task(3, 4, 2) == pytest.approx(0.5)
    assert pass_hat_k_task(3, 4, 3) == pytest.approx(math.comb(3, 3) / math.comb(4, 3))
    assert pass_hat_k_task(3, 4, 4) == 0.0
    assert pass_hat_k_task(4, 4, 4) == 1.0


def test_pass_hat_k_averages_over_tasks_and_falls_with_k():
    results = [(4, 4), (2, 4), (0, 4)]
    assert pass_hat_k(results, 1) == pytest.approx((1 + 0.5 + 0) / 3)
    assert pass_hat_k(results, 2) == pytest.approx((1 + 1 / 6 + 0) / 3)
    assert pass_hat_k(results, 1) > pass_hat_k(results, 2) > pass_hat_k(results, 3)


@pytest.mark.parametrize("successes,trials,k", [(5, 4, 1), (-1, 4, 1), (2, 4, 0), (2, 4, 5)])
def test_pass_hat_k_rejects_impossible_input(successes, trials, k):
    with pytest.raises(ValueError):
        pass_hat_k_task(successes, trials, k)


def test_percentile_interpolates():
    values = [10, 20, 30, 40]
    assert percentile(values, 50) == pytest.approx(25)
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([], 95) == 0.0
