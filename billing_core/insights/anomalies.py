"""Anomaly alerts on a customer's own daily kWh: a day or a week far above the customer's pattern,
zero use for days on an occupied account, a register going backwards.

"Far above" is a robust z-score, (x − median) / (1.4826 × MAD), against the customer's own days
*of the same season* (summer May–Oct / non-summer, the residential tariff's seasons): the window
before the reported days, and where it holds too few days of that season (the first weeks of
summer), the same weeks a year earlier. Each alert carries its figures (Decimal, to 0.01 kWh) and
one Chinese sentence quoting them. Scans are vectorised over rows of the daily-kWh matrix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from billing_core.insights.history import REGISTER_CN, DailyHistory
from billing_core.insights.policy import AnomalyPolicy

MAD_TO_SD = 1.4826
CENT = Decimal("0.01")
SUMMER = frozenset({5, 6, 7, 8, 9, 10})
MAX_DAY_ALERTS = 3  # the most extreme days; more would bury the message


@dataclass(frozen=True)
class Alert:
    kind: str  # day_high / week_high / zero_days / reading_backwards
    start: date
    end: date
    value: Decimal  # the day's kWh, the week's kWh, the zero days' count, the reading now
    typical: Decimal | None  # the customer's usual day (median kWh) or the reading before
    score: Decimal | None  # robust z-score where one applies
    message: str


def _kwh(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(CENT, rounding=ROUND_HALF_UP)


def _season(day: date) -> bool:
    return day.month in SUMMER


def _robust(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, robust scale (floored) and count of known values per row."""
    count = (~np.isnan(block)).sum(axis=1)
    filled = np.where(count[:, None] > 0, block, 0.0)
    with np.errstate(invalid="ignore"):
        median = np.nanmedian(filled, axis=1)
        mad = np.nanmedian(np.abs(filled - median[:, None]), axis=1)
    scale = np.maximum(MAD_TO_SD * mad, np.maximum(0.05 * median, 0.1))
    return median, scale, count


def _baseline_columns(first_day: date, report_first: int, season: bool, policy: AnomalyPolicy) -> list[int]:
    """Columns of the same season before the reported days; last year's weeks when those are too few."""
    lo = max(0, report_first - policy.window_days)
    columns = [i for i in range(lo, report_first) if _season(first_day + timedelta(days=i)) == season]
    if len(columns) < policy.min_window_days:
        a_year = report_first - 365
        around = range(max(0, a_year - policy.window_days // 2), max(0, a_year + policy.window_days // 2))
        columns += [i for i in around if _season(first_day + timedelta(days=i)) == season and i not in columns]
    return columns


def scan_many(matrix: np.ndarray, first_day: date, as_of: date, policy: AnomalyPolicy) -> list[list[Alert]]:
    """Usage alerts (day, week, zero days) of every row over the `report_days` up to `as_of`."""
    rows = matrix.shape[0]
    last = min((as_of - first_day).days, matrix.shape[1] - 1)
    first = max(0, last - policy.report_days + 1)
    alerts: list[list[Alert]] = [[] for _ in range(rows)]
    day_z, week_z = float(policy.day_z), float(policy.week_z)
    min_excess = float(policy.min_excess_kwh)
    for season in (True, False):
        report = [i for i in range(first, last + 1) if _season(first_day + timedelta(days=i)) == season]
        if not report:
            continue
        base_cols = _baseline_columns(first_day, first, season, policy)
        if len(base_cols) < policy.min_window_days:
            continue
        base = matrix[:, base_cols]
        median, scale, count = _robust(base)
        enough = count >= policy.min_window_days
        values = matrix[:, report]
        with np.errstate(invalid="ignore"):
            z = (values - median[:, None]) / scale[:, None]
            high = enough[:, None] & (z >= day_z) & (values - median[:, None] >= min_excess)
        in_weeks = np.zeros_like(high)  # report days covered by a week alert: not repeated as day alerts
        # Weeks: rolling 7-day means of the baseline give the usual week; the report's last full weeks are
        # tested. A week is reported when it is high with its own days, and either still high without the
        # days already alerted or holding at least three of them: one spike is a day alert, not a week one.
        if len(base_cols) >= 14:
            filled = np.nan_to_num(base, nan=0.0)
            known = (~np.isnan(base)).astype(float)
            csum, ccount = np.cumsum(filled, axis=1), np.cumsum(known, axis=1)
            sums = csum[:, 6:] - np.concatenate([np.zeros((rows, 1)), csum[:, :-7]], axis=1)
            counts = ccount[:, 6:] - np.concatenate([np.zeros((rows, 1)), ccount[:, :-7]], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(counts >= 5, sums / counts, np.nan)
            w_median, w_scale, w_count = _robust(means)
            sustained = np.where(high, median[:, None], values)
            for end_index in range(len(report) - 1, 5, -7):
                if report[end_index] - report[end_index - 6] != 6:
                    continue  # not seven consecutive days (a season boundary inside)
                days = slice(end_index - 6, end_index + 1)
                with np.errstate(invalid="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a week not read yet: all NaN, no alert
                    week_mean = np.nanmean(values[:, days], axis=1)
                    wz = (week_mean - w_median) / w_scale
                    calm_z = (np.nanmean(sustained[:, days], axis=1) - w_median) / w_scale
                    hit = ((w_count >= 5) & (wz >= week_z) & ((week_mean - w_median) * 7 >= min_excess)
                           & ((calm_z >= week_z) | (high[:, days].sum(axis=1) >= 3)))
                for row in np.flatnonzero(hit):
                    in_weeks[row, days] = True
                    start = first_day + timedelta(days=report[end_index - 6])
                    end = first_day + timedelta(days=report[end_index])
                    total, usual = _kwh(np.nansum(values[row, days])), _kwh(w_median[row])
                    daily = _kwh(week_mean[row])
                    pct = ((daily / usual - 1) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP) if usual > 0 else None
                    alerts[row].append(Alert(
                        "week_high", start, end, total, usual, _kwh(wz[row]),
                        f"{start} 至 {end} 一周用电 {total} 千瓦时，日均 {daily} 千瓦时，高于您同季节通常的日均 "
                        f"{usual} 千瓦时" + (f"（高出 {pct}%）" if pct is not None else "") + "。"))
        high &= ~in_weeks
        for row in np.flatnonzero(high.any(axis=1)):
            hits = sorted(np.flatnonzero(high[row]), key=lambda j: -z[row, j])[:MAX_DAY_ALERTS]
            for j in sorted(hits):
                day = first_day + timedelta(days=report[j])
                x, m = _kwh(values[row, j]), _kwh(median[row])
                times = (x / m).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) if m > 0 else None
                alerts[row].append(Alert(
                    "day_high", day, day, x, m, _kwh(z[row, j]),
                    f"{day} 用电 {x} 千瓦时，明显高于您近期同季节的日常用电（每天约 {m} 千瓦时）"
                    + (f"，约为平时的 {times} 倍" if times else "") + "。"))
        # Zero days on an occupied account (the usual day uses at least occupied_min_daily_kwh).
        occupied = enough & (median >= float(policy.occupied_min_daily_kwh))
        zero = (values < 0.005) & occupied[:, None]
        for row in np.flatnonzero(zero.sum(axis=1) >= policy.zero_days):
            run_start = None
            flags = list(zero[row]) + [False]
            for j, is_zero in enumerate(flags):
                consecutive = run_start is not None and j < len(report) and report[j] == report[j - 1] + 1
                if is_zero and (run_start is None or consecutive):
                    run_start = j if run_start is None else run_start
                    continue
                if run_start is not None and j - run_start >= policy.zero_days:
                    start = first_day + timedelta(days=report[run_start])
                    end = first_day + timedelta(days=report[j - 1])
                    n, m = j - run_start, _kwh(median[row])
                    alerts[row].append(Alert(
                        "zero_days", start, end, Decimal(n), m, None,
                        f"{start} 至 {end} 连续 {n} 天用电为 0，而您平时每天约用电 {m} 千瓦时；"
                        "如家中或经营场所有人使用，请检查电表和供电是否正常。"))
                run_start = j if is_zero else None
    for row_alerts in alerts:
        row_alerts.sort(key=lambda a: (a.start, a.kind))
    return alerts


def backwards_alerts(history: DailyHistory, since: date) -> list[Alert]:
    """Registers that went backwards (示数倒走) on or after `since`."""
    found = []
    for b in history.backwards:
        if b.day < since:
            continue
        found.append(Alert(
            "reading_backwards", b.previous_day, b.day, b.current, b.previous, None,
            f"电表 {b.asset_no} 的{REGISTER_CN.get(b.register, str(b.register))}示数在 {b.day} 由 {b.previous} "
            f"降至 {b.current}，比前一次读数还小且无换表记录，已列入人工复核，复核前不按此读数计费。"))
    return found


def scan(history: DailyHistory, as_of: date, policy: AnomalyPolicy) -> list[Alert]:
    """Every alert of one customer over the `report_days` up to `as_of`, in date order."""
    alerts = scan_many(history.kwh[np.newaxis, :], history.first_day, as_of, policy)[0]
    alerts += backwards_alerts(history, as_of - timedelta(days=policy.report_days - 1))
    return sorted(alerts, key=lambda a: (a.start, a.kind))
