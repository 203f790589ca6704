"""Forecast accuracy on the demo utility's held-out months, and insights for 100,000 customers.

Part 1 (accuracy): seeds the demo utility (`powerdesk demo seed`, default 2,000 customers) into a
fresh SQLite file, reads every customer's daily kWh through `insights.history.load_histories`,
and forecasts each held-out month (2026-06 … 2026-10) from only the readings before each forecast
day — nothing read yet (day 0), 10 days read, 20 days read — with the insights method, the naive
"same as last month" baseline and, as a second reference, the month-to-date run rate. Prints MAPE
(customers whose month is at least 10 kWh) and the share of months inside each method's nominal
80 % interval. The policy's parameters are fixed data, not fitted on these months.

Part 2 (timing): 100,000 generated customers (the demo's mix of homes, shops, plants and farms)
with 13 months of daily kWh, in chunks of 10,000: the vectorised forecast and anomaly scan, then per
customer the bill so far (`compute_bill`, exact kWh, uncached) and the forecast bill with both
interval ends and the saving advice (`compute_bill` what-if bills, cached). Target: <= 60 s on one core.

    .venv/bin/python benchmarks/bench_forecast.py [--demo-customers 2000] [--customers 100000] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.bill_types import BasicChargeMode, CustomerCategory, HouseholdType, PurchaseMode, TariffAttributes
from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade
from billing_core.db.models import Customer
from billing_core.demo.seed import FARM_SEASON, HOME_SEASON, LAST_DAY, OPENING_DAY, PLANT_SEASON, SHOP_SEASON, seed_demo
from billing_core.insights.advice import saving_advice
from billing_core.insights.anomalies import scan_many
from billing_core.insights.bills import UsageShape, needs, usage_of, what_if_bill
from billing_core.insights.forecast import PRIOR_SEASONAL, forecast_month, naive_same_as_last_month
from billing_core.insights.history import load_histories
from billing_core.insights.month import forecast_bills, kwh_range
from billing_core.insights.policy import load_policy
from billing_core.periods import period_bounds

HELD_OUT = ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
DAYS_READ = [0, 10, 20]
MIN_ACTUAL_KWH = 10.0


def _score(actual: np.ndarray, point: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[float, float, int]:
    ok = (actual >= MIN_ACTUAL_KWH) & np.isfinite(point) & np.isfinite(low) & np.isfinite(high)
    a, p = actual[ok], point[ok]
    mape = float(np.mean(np.abs(p - a) / a) * 100)
    coverage = float(np.mean((a >= low[ok]) & (a <= high[ok])) * 100)
    return mape, coverage, int(ok.sum())


def accuracy(customers: int) -> None:
    policy = load_policy().forecast
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        with Session(engine) as session:
            seed_demo(session, customers=customers, seed=42, statement_dir=Path(tmp))
            session.commit()
            ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
            seeded = time.perf_counter()
            histories = load_histories(session, ids, OPENING_DAY + timedelta(days=1), LAST_DAY)
        engine.dispose()
    loaded = time.perf_counter()
    first_day = OPENING_DAY + timedelta(days=1)
    matrix = np.stack([histories[cid].kwh for cid in ids])
    print(f"demo utility: {customers} customers, {matrix.shape[1]} days of readings "
          f"(seed {seeded - started:.1f} s, load_histories {loaded - seeded:.1f} s)")
    print(f"{'month':8} {'read':>5} | {'insights MAPE':>13} {'cover80':>7} {'seasonal':>8} | "
          f"{'naive MAPE':>10} {'cover80':>7} | {'run-rate MAPE':>13} | {'n':>5}")
    by_read: dict[int, dict[str, list[float]]] = {r: {"method": [], "cov": [], "naive": [], "ncov": [], "run": []}
                                                  for r in DAYS_READ}
    for period in HELD_OUT:
        start, end = period_bounds(period)
        cols = slice((start - first_day).days, (end - first_day).days + 1)
        actual = np.nansum(matrix[:, cols], axis=1)
        naive, naive_low, naive_high = naive_same_as_last_month(matrix[:, : cols.start], first_day, period, policy)
        n_mape, n_cov, _ = _score(actual, naive, naive_low, naive_high)
        for read in DAYS_READ:
            as_of = start + timedelta(days=read - 1)
            visible = matrix[:, : (as_of - first_day).days + 1]
            f = forecast_month(visible, first_day, as_of, period, policy)
            mape, cov, n = _score(actual, f.point, f.low, f.high)
            seasonal = float(np.mean(f.prior_kind == PRIOR_SEASONAL) * 100)
            totals = by_read[read]
            run_text = "—"
            if read:
                run = f.mtd / read * ((end - start).days + 1)
                run_mape = _score(actual, run, run, run)[0]
                run_text = f"{run_mape:.1f} %"
                totals["run"].append(run_mape)
            print(f"{period:8} {read:>4}d | {mape:>11.1f} % {cov:>5.1f} % {seasonal:>6.0f} % | "
                  f"{n_mape:>8.1f} % {n_cov:>5.1f} % | {run_text:>13} | {n:>5}")
            totals["method"] += [mape]
            totals["cov"] += [cov]
            totals["naive"] += [n_mape]
            totals["ncov"] += [n_cov]
    print("mean over the held-out months, by days read:")
    for read, totals in by_read.items():
        run_text = f", run rate MAPE {np.mean(totals['run']):.1f} %" if totals["run"] else ""
        print(f"  {read:>2} days read: insights MAPE {np.mean(totals['method']):.1f} % (80 % interval covers "
              f"{np.mean(totals['cov']):.1f} %), naive same-as-last-month MAPE {np.mean(totals['naive']):.1f} % "
              f"(covers {np.mean(totals['ncov']):.1f} %){run_text}")


# ---------------------------------------------------------------- timing, generated customers

KINDS = [  # (share, kind, season, attributes)
    (0.775, "home", HOME_SEASON, TariffAttributes(category=CustomerCategory.RESIDENTIAL, voltage_level="<1kV")),
    (0.06, "home", HOME_SEASON, TariffAttributes(category=CustomerCategory.RESIDENTIAL, voltage_level="<1kV",
                                                 household_type=HouseholdType.MANY_PERSON)),
    (0.03, "home", HOME_SEASON, TariffAttributes(category=CustomerCategory.RESIDENTIAL, voltage_level="<1kV",
                                                 residential_tou=True)),
    (0.05, "shop", SHOP_SEASON, TariffAttributes(category=CustomerCategory.CI_SINGLE, voltage_level="<1kV",
                                                 purchase_mode=PurchaseMode.AGENCY)),
    (0.025, "farm", FARM_SEASON, TariffAttributes(category=CustomerCategory.AGRICULTURAL, voltage_level="<1kV")),
    (0.035, "plant", PLANT_SEASON, TariffAttributes(
        category=CustomerCategory.CI_TWO_PART, purchase_mode=PurchaseMode.AGENCY, capacity_kva=Decimal(630),
        basic_charge_mode=BasicChargeMode.CAPACITY, pf_standard=Decimal("0.90"))),
    (0.025, "plant", PLANT_SEASON, TariffAttributes(
        category=CustomerCategory.CI_TWO_PART, purchase_mode=PurchaseMode.AGENCY, capacity_kva=Decimal(800),
        basic_charge_mode=BasicChargeMode.DEMAND, contracted_demand_kw=Decimal(450), pf_standard=Decimal("0.90"))),
]
BASE = {"home": 7.4, "shop": 100.0, "farm": 60.0, "plant": 5000.0}
SHARES = {"home": (Decimal(0), Decimal("0.30"), Decimal("0.35"), Decimal("0.35")),
          "shop": (Decimal("0.16"), Decimal("0.30"), Decimal("0.42"), Decimal("0.12")),
          "plant": (Decimal("0.10"), Decimal("0.22"), Decimal("0.33"), Decimal("0.35"))}


def generated_chunk(count: int, rng: np.random.Generator, first_day: date, days: int
                    ) -> tuple[np.ndarray, list[int]]:
    kinds = rng.choice(len(KINDS), size=count, p=[k[0] for k in KINDS])
    dates = [first_day + timedelta(days=i) for i in range(days)]
    months = np.array([d.month for d in dates])
    matrix = np.empty((count, days))
    for index, (_, kind, season, _) in enumerate(KINDS):
        rows = kinds == index
        level = BASE[kind] * rng.lognormal(0, 0.45, rows.sum())
        factor = np.array([season[m] for m in months])
        matrix[rows] = level[:, None] * factor[None, :] * rng.uniform(0.7, 1.3, (rows.sum(), days))
    matrix[rng.random(matrix.shape) < 0.002] = np.nan  # a few days without a reading
    spikes = rng.random(count) < 0.005  # one customer in 200: a day at 5x, another: five zero days
    matrix[spikes, days - 3] *= 5
    zeros = rng.random(count) < 0.005
    matrix[zeros, days - 9 : days - 4] = 0.0
    return matrix, list(kinds)


def timing(customers: int, chunk: int) -> None:
    policy = load_policy()
    period, as_of = "2026-10", date(2026, 10, 15)
    start, _ = period_bounds(period)
    first_day = as_of - timedelta(days=policy.forecast.history_days)
    days = (as_of - first_day).days + 1
    rng = np.random.default_rng(20261015)
    step = policy.forecast.kwh_step
    generated = vector = bills = 0.0
    vector_cpu = bills_cpu = 0.0
    bill_count = 0
    alerts = advice_items = 0
    for offset in range(0, customers, chunk):
        t0, c0 = time.perf_counter(), time.process_time()
        matrix, kinds = generated_chunk(min(chunk, customers - offset), rng, first_day, days)
        t1, c1 = time.perf_counter(), time.process_time()
        forecast = forecast_month(matrix, first_day, as_of, period, policy.forecast)
        scans = scan_many(matrix, first_day, as_of, policy.anomalies)
        alerts += sum(len(s) for s in scans)
        t2, c2 = time.perf_counter(), time.process_time()
        mtd_cols = slice((start - first_day).days, days)
        for row, kind_index in enumerate(kinds):
            _, kind, _, attributes = KINDS[kind_index]
            shape = UsageShape(SHARES.get(kind), Decimal("0.35") if attributes.pf_standard else None,
                               Decimal(450) if attributes.basic_charge_mode is BasicChargeMode.DEMAND else None)
            mtd = Decimal(repr(float(np.nansum(matrix[row, mtd_cols])))).quantize(Decimal("0.01"))
            so_far = usage_of(mtd, shape, **needs(attributes))
            what_if_bill.__wrapped__(attributes, start, as_of, so_far)  # exact kWh: uncached, as the service
            kwh = kwh_range(forecast, row, step)
            if kwh is not None:
                forecast_bills(attributes, period, kwh, shape)
                bill_count += 3
                advice_items += len(saving_advice(attributes, period, kwh.point, mtd, shape, policy.advice,
                                                  shape.max_demand_kw))
            bill_count += 1
        t3, c3 = time.perf_counter(), time.process_time()
        vector_cpu += c2 - c1
        bills_cpu += c3 - c2
        generated += t1 - t0
        vector += t2 - t1
        bills += t3 - t2
    info = what_if_bill.cache_info()
    print(f"insights for {customers} generated customers (as of {as_of}, chunks of {chunk}): "
          f"vectorised forecast + anomaly scan {vector:.1f} s wall / {vector_cpu:.1f} s CPU, {bill_count} bills via "
          f"compute_bill {bills:.1f} s wall / {bills_cpu:.1f} s CPU ({info.hits} cached / {info.misses} computed "
          f"what-if bills); total {vector + bills:.1f} s wall, {vector_cpu + bills_cpu:.1f} s CPU on one core "
          f"(data generation {generated:.1f} s not counted); {alerts} anomaly alerts, {advice_items} advice items "
          f"(what-if bills included above); target <= 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-customers", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    if not args.skip_accuracy:
        accuracy(args.demo_customers)
    if not args.skip_timing:
        timing(args.customers, args.chunk)


if __name__ == "__main__":
    main()
