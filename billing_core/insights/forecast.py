"""The month's kWh forecast with an interval, for one customer or 100,000 at once (numpy rows).

Method (a seasonal baseline updated by the month so far):

* a *prior* daily rate for the month: the same month last year × the trend (the last
  `trend_months` months against the same months a year earlier); without last year's month, last
  month's rate, as uncertain as the customer's own month-to-month changes have been;
* the month-to-date rate from the days already read, weighted against the prior by their
  precisions (n days / day-to-day scatter² against 1 / prior scatter²), so early in the month the
  baseline leads and late in the month the readings do;
* a weekday pattern (a plant idles on Sundays, a home uses more at weekends) from the last weeks
  applied to the days still to come;
* the interval: the uncertainty of the rate plus the day-to-day scatter of the days to come,
  at the policy's nominal level (normal approximation), never below what is already used.

`naive_same_as_last_month` is the baseline the benchmark compares against. Floats are statistics
only; the billing core prices the rounded kWh (`month.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np

from billing_core.insights.policy import ForecastPolicy
from billing_core.periods import period_bounds

PRIOR_NONE, PRIOR_SEASONAL, PRIOR_LAST_MONTH = 0, 1, 2
PRIOR_CN = {PRIOR_NONE: "仅按本月已抄读数", PRIOR_SEASONAL: "去年同月用电×近期同比趋势", PRIOR_LAST_MONTH: "上月用电水平"}
MAD_TO_SD = 1.4826
DEFAULT_DAILY_SD = 0.3  # scatter assumed when the history has no usable day at all


@dataclass(frozen=True)
class ForecastArrays:
    """Per row: kWh read so far, the forecast and its interval (NaN when nothing is known)."""

    period: str
    as_of: date
    days_in_month: int
    days_elapsed: int
    mtd: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    prior_kind: np.ndarray
    trend: np.ndarray  # NaN where no trend was measured
    daily_sd: np.ndarray


def _month_columns(first_day: date, days: int, period: str) -> slice | None:
    start, end = period_bounds(period)
    lo, hi = (start - first_day).days, (end - first_day).days
    if lo < 0 or hi >= days:
        return None
    return slice(lo, hi + 1)


def _shift(period: str, months: int) -> str:
    index = int(period[:4]) * 12 + int(period[5:7]) - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _month_rate(matrix: np.ndarray, first_day: date, period: str, min_share: float) -> np.ndarray:
    """Mean kWh a day of a past month per row; NaN where too few of its days are known."""
    columns = _month_columns(first_day, matrix.shape[1], period)
    if columns is None:
        return np.full(matrix.shape[0], np.nan)
    block = matrix[:, columns]
    known = (~np.isnan(block)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.nansum(block, axis=1) / known
    return np.where(known >= min_share * block.shape[1], rate, np.nan)


def weekday_pattern(matrix: np.ndarray, first_day: date, last: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(factors (rows, 7) with mean 1, relative day-to-day scatter per row) from the `window` days up to column `last`.

    Each day is first divided by its own calendar month's mean, so a season change inside the
    window is not taken for a weekday effect; factors are shrunk towards 1 by two pseudo-days.
    """
    lo = max(0, last - window + 1)
    block = matrix[:, lo : last + 1]
    rows = matrix.shape[0]
    if block.shape[1] == 0:
        return np.ones((rows, 7)), np.full(rows, DEFAULT_DAILY_SD)
    dates = [first_day + timedelta(days=lo + i) for i in range(block.shape[1])]
    months = np.array([d.year * 12 + d.month for d in dates])
    weekdays = np.array([d.weekday() for d in dates])
    normalised = np.full(block.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for month in np.unique(months):
            cols = months == month
            mean = np.nanmean(block[:, cols], axis=1, keepdims=True) if np.any(~np.isnan(block[:, cols])) else None
            if mean is not None:
                normalised[:, cols] = np.where(mean > 0, block[:, cols] / mean, np.nan)
        factors = np.ones((rows, 7))
        for weekday in range(7):
            cols = weekdays == weekday
            values = normalised[:, cols]
            count = (~np.isnan(values)).sum(axis=1)
            total = np.nansum(values, axis=1)
            factors[:, weekday] = (total + 2.0) / (count + 2.0)
        factors /= factors.mean(axis=1, keepdims=True)
        residual = normalised / factors[:, weekdays]
        centre = np.nanmedian(np.where(np.isnan(residual).all(axis=1, keepdims=True), 1.0, residual), axis=1, keepdims=True)
        mad = np.nanmedian(np.abs(np.where(np.isnan(residual).all(axis=1, keepdims=True), 1.0, residual) - centre), axis=1)
    scatter = np.where(np.isnan(residual).all(axis=1), DEFAULT_DAILY_SD, MAD_TO_SD * mad)
    return factors, scatter


def _month_change_scatter(matrix: np.ndarray, first_day: date, period: str, min_share: float,
                          months_back: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """RMS of log month-to-month changes of the daily rate over the last year, and how many were seen."""
    rates = np.stack([_month_rate(matrix, first_day, _shift(period, -k), min_share) for k in range(months_back, 0, -1)],
                     axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        changes = np.log(rates[:, 1:] / rates[:, :-1])
    changes[~np.isfinite(changes)] = np.nan
    count = (~np.isnan(changes)).sum(axis=1)
    with np.errstate(invalid="ignore"):
        rms = np.sqrt(np.nansum(changes**2, axis=1) / count)
    return rms, count


def forecast_month(matrix: np.ndarray, first_day: date, as_of: date, period: str,
                   policy: ForecastPolicy) -> ForecastArrays:
    """Forecast every row's kWh of `period`, with readings known up to the end of `as_of`.

    `matrix` holds kWh a day (rows = customers, column 0 = `first_day`, NaN = unknown) and must
    reach at least the day before the month; `as_of` may be the day before the month (nothing read yet).
    """
    start, end = period_bounds(period)
    if not start - timedelta(days=1) <= as_of <= end:
        raise ValueError(f"as_of {as_of} is not within {period} (or the day before it)")
    rows, columns = matrix.shape
    first, last = (start - first_day).days, (end - first_day).days
    if first < 1:
        raise ValueError("the history must start before the forecast month")
    min_share = float(policy.min_known_share)
    known_to = min((as_of - first_day).days, columns - 1)
    # Only what was read by `as_of` may be used (the benchmark forecasts months that are fully read).
    seen = matrix[:, : known_to + 1]
    factors, scatter = weekday_pattern(seen, first_day, known_to, policy.weekday_window_days)
    scatter = np.maximum(scatter, float(policy.min_daily_sd))
    month_dates = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    weekdays = np.array([d.weekday() for d in month_dates])
    elapsed = max(0, (as_of - start).days + 1)

    month_block = np.full((rows, len(month_dates)), np.nan)
    if elapsed:
        month_block[:, :elapsed] = seen[:, first : first + elapsed]
    known = ~np.isnan(month_block)
    mtd = np.nansum(month_block, axis=1)
    f_days = factors[:, weekdays]
    f_known = np.where(known, f_days, 0.0).sum(axis=1)
    n_known = known.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mtd_rate = np.where(f_known > 0, mtd / f_known, np.nan)

    # The prior daily rate (per unit of weekday factor ≈ kWh a day).
    last_month = _month_rate(seen, first_day, _shift(period, -1), min_share)
    last_year = _month_rate(seen, first_day, _shift(period, -12), min_share)
    recent = np.stack([_month_rate(seen, first_day, _shift(period, -k), min_share)
                       for k in range(1, policy.trend_months + 1)], axis=1)
    earlier = np.stack([_month_rate(seen, first_day, _shift(period, -k - 12), min_share)
                        for k in range(1, policy.trend_months + 1)], axis=1)
    low_clip, high_clip = (float(v) for v in policy.trend_clip)
    with np.errstate(invalid="ignore", divide="ignore"):
        trend_raw = recent.sum(axis=1) / earlier.sum(axis=1)
    trend_known = np.isfinite(trend_raw) & (earlier.sum(axis=1) > 0)
    trend = np.where(trend_known, np.clip(trend_raw, low_clip, high_clip), np.nan)
    change_rms, change_count = _month_change_scatter(seen, first_day, period, min_share)
    fallback_sd = np.where(change_count >= 3, np.maximum(change_rms, float(policy.min_daily_sd)),
                           float(policy.fallback_prior_sd))

    seasonal = ~np.isnan(last_year)
    prior = np.where(seasonal, last_year * np.where(trend_known, trend, 1.0), last_month)
    prior_sd = np.where(seasonal, np.where(trend_known, float(policy.seasonal_prior_sd), float(policy.fallback_prior_sd)),
                        fallback_sd)
    prior_kind = np.where(seasonal, PRIOR_SEASONAL, np.where(np.isnan(last_month), PRIOR_NONE, PRIOR_LAST_MONTH))
    has_prior = ~np.isnan(prior)

    w_prior = np.where(has_prior, 1.0 / prior_sd**2, 0.0)
    w_mtd = np.where(n_known > 0, n_known / scatter**2, 0.0)
    weight = w_prior + w_mtd
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (w_prior * np.nan_to_num(prior) + w_mtd * np.nan_to_num(mtd_rate)) / weight
        rate_var = 1.0 / weight  # relative variance of the rate
    rate = np.where(weight > 0, np.maximum(rate, 0.0), np.nan)

    f_rest = np.where(known, 0.0, f_days)
    big_f, f_squares = f_rest.sum(axis=1), (f_rest**2).sum(axis=1)
    point = mtd + rate * big_f
    sd = rate * np.sqrt(big_f**2 * rate_var + f_squares * scatter**2)
    z = NormalDist().inv_cdf((1 + float(policy.interval_level)) / 2)
    low = np.maximum(point - z * sd, mtd)
    high = point + z * sd
    return ForecastArrays(period, as_of, len(month_dates), elapsed, mtd, point, low, high, prior_kind, trend, scatter)


def naive_same_as_last_month(matrix: np.ndarray, first_day: date, period: str, policy: ForecastPolicy
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The baseline: this month = last month's kWh, interval from the customer's month-to-month changes."""
    columns = _month_columns(first_day, matrix.shape[1], _shift(period, -1))
    if columns is None:
        nan = np.full(matrix.shape[0], np.nan)
        return nan, nan, nan
    block = matrix[:, columns]
    point = np.where((~np.isnan(block)).mean(axis=1) >= float(policy.min_known_share), np.nansum(block, axis=1), np.nan)
    rms, count = _month_change_scatter(matrix, first_day, period, float(policy.min_known_share))
    spread = np.where(count >= 3, rms, float(policy.fallback_prior_sd))
    z = NormalDist().inv_cdf((1 + float(policy.interval_level)) / 2)
    return point, point * np.exp(-z * spread), point * np.exp(z * spread)
