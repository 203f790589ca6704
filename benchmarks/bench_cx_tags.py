"""Customer tags + portraits (issue 15): wall and CPU seconds, peak memory, for the 2,000-customer
demo and for 100,000 generated customers.

Target (issue 15): 100,000 customers in ≤ 60 s on one core. The database is built first (the demo
seed, or bulk-generated customers, 12 months of bills, TOU lines, payments, conversations and work
orders); then a child process limited to one thread (OMP/BLAS = 1) runs `refresh_tags` and
`refresh_portraits` on it and reports its own wall time, CPU time and peak RSS, so the set-up does
not count and the memory figure is the refresh's alone. SQLite file in a temp directory.

    .venv/bin/python benchmarks/bench_cx_tags.py [--demo 2000] [--generated 100000] [--seed 7] [--keep DIR]

The target is judged on CPU time (the refresh runs on one thread, so CPU seconds are one core's
seconds); wall time is printed beside it with the load average, since on the shared 2-core machine
wall time mostly measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AS_OF = datetime(2026, 10, 20, 4, 0, tzinfo=UTC)  # after the demo's last billed month, 2026-09
MONTHS = [f"{2025 + (9 + m) // 12}-{(9 + m) % 12 + 1:02d}" for m in range(12)]  # 2025-10 … 2026-09
CHANNELS = ("web", "wechat", "ivr", "app")
TOPICS = ("lookup_bill", "explain_bill", "payment_status", "open_dispute", "complaint", "how_to_pay",
          "transfer_to_human", "overdue_late_fee")
OUTCOMES = ("resolved", "resolved", "resolved", "ticket", "transferred", "abandoned")
CATEGORIES = ("service_attitude", "delay", "dispute_handling", "billing_error", "other")


def migrate(url: str) -> None:
    from agent.migrate import upgrade as upgrade_agent
    from billing_core.db.migrate import upgrade as upgrade_billing
    from tools.migrate import upgrade as upgrade_tools

    upgrade_billing(url)
    upgrade_tools(url)
    upgrade_agent(url)


def add_interactions(url: str, accounts: list[str], rng: random.Random) -> tuple[int, int]:
    """Conversations (about one in three customers, 1–6 each) and complaint/dispute work orders."""
    from sqlalchemy import insert

    from agent.models import ConversationRecord
    from billing_core.db.engine import make_engine
    from billing_core.db.models import WorkOrder

    conversations, orders = [], []
    for account in accounts:
        if rng.random() > 0.35:
            continue
        heavy = rng.random() < 0.1
        for k in range(rng.randint(1, 6) + (6 if heavy else 0)):
            topic = rng.choice(TOPICS)
            outcome = "transferred" if heavy and rng.random() < 0.6 else rng.choice(OUTCOMES)
            started = AS_OF - timedelta(days=rng.uniform(1, 360), hours=rng.uniform(0, 24))
            conversations.append({
                "conversation_id": f"bench-{account}-{k}", "channel": rng.choice(CHANNELS), "account_no": account,
                "brain": "local", "topic": topic, "intents": [topic], "tickets": [], "outcome": outcome,
                "turn_count": rng.randint(2, 9), "csat_score": rng.choice((None, None, 5, 4, 3, 2, 1)),
                "started_at": started, "ended_at": started + timedelta(minutes=4)})
            if topic in ("complaint", "open_dispute") and rng.random() < 0.5:
                kind = "complaint" if topic == "complaint" else "dispute"
                orders.append({"no": f"WB{len(orders):012d}", "kind": kind, "account_no": account,
                               "status": "closed", "priority": "normal", "title": "基准", "description": "",
                               "channel": "web", "created_at": started,
                               "payload": {"category": rng.choice(CATEGORIES)} if kind == "complaint" else {}})
    engine = make_engine(url)
    with engine.begin() as connection:
        for start in range(0, len(conversations), 20000):
            connection.execute(insert(ConversationRecord.__table__), conversations[start:start + 20000])
        if orders:
            connection.execute(insert(WorkOrder.__table__), orders)
    engine.dispose()
    return len(conversations), len(orders)


def build_demo(url: str, customers: int, seed: int, directory: Path) -> dict[str, int]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from billing_core.db.engine import make_engine
    from billing_core.db.models import Customer
    from billing_core.demo.seed import seed_demo

    migrate(url)
    engine = make_engine(url)
    with Session(engine) as session:
        seed_demo(session, customers=customers, seed=seed, statement_dir=directory)
        session.commit()
        accounts = list(session.scalars(select(Customer.account_no)))
    engine.dispose()
    conversations, orders = add_interactions(url, accounts, random.Random(seed))
    return {"customers": len(accounts), "conversations": conversations, "work_orders": orders}


def build_generated(url: str, customers: int, seed: int) -> dict[str, int]:
    """Customers with 12 monthly bills (TOU lines for the business ones), payments and interactions,
    written with bulk inserts (no tariff computation: the benchmark is about reading them back)."""
    from sqlalchemy import insert

    from billing_core.db.engine import make_engine
    from billing_core.db.models import Bill, BillLine, Customer, Payment
    from billing_core.periods import period_bounds

    migrate(url)
    rng = random.Random(seed)
    engine = make_engine(url)
    bounds = {p: period_bounds(p) for p in MONTHS}
    accounts: list[str] = []
    counts = {"customers": customers, "bills": 0, "bill_lines": 0, "payments": 0}
    batch = 5000
    bill_id = line_id = pay_id = 0
    with engine.begin() as connection:
        for first in range(1, customers + 1, batch):
            ids = range(first, min(first + batch, customers + 1))
            people, bills, lines, pays = [], [], [], []
            for cid in ids:
                business = rng.random() < 0.12
                account = f"9{cid:011d}"
                accounts.append(account)
                people.append({"id": cid, "account_no": account, "name": "基准客户", "phone": None,
                               "address": "广州市天河区基准路 1 号",
                               "category": "ci_single" if business else "residential",
                               "capacity_kva": Decimal(rng.choice((100, 315, 630, 1250))) if business else None,
                               "residential_tou": False})
                base = rng.lognormvariate(8.5, 0.8) if business else rng.lognormvariate(5.6, 0.5)
                summer = rng.uniform(1.0, 1.8)
                debtor = rng.random() < 0.03
                late = rng.random() < 0.1
                for m, period in enumerate(MONTHS):
                    bill_id += 1
                    kwh = round(base * (summer if period[5:] in ("07", "08", "09") else 1.0) * rng.uniform(0.85, 1.15))
                    start, end = bounds[period]
                    unpaid = debtor and m >= 9
                    bills.append({"id": bill_id, "customer_id": cid, "period": period, "period_start": start,
                                  "period_end": end, "total_kwh": Decimal(kwh), "amount": Decimal(kwh) * Decimal("0.6"),
                                  "status": "issued" if unpaid else "paid",
                                  "due_date": end + timedelta(days=20)})
                    if business:
                        peak = round(kwh * rng.uniform(0.25, 0.55))
                        for code, qty in (("energy_peak", peak), ("energy_flat", (kwh - peak) // 2),
                                          ("energy_valley", kwh - peak - (kwh - peak) // 2)):
                            line_id += 1
                            lines.append({"id": line_id, "bill_id": bill_id, "position": len(lines) % 3 + 1,
                                          "code": code, "name": code, "quantity": Decimal(qty), "unit": "kWh",
                                          "unit_price": Decimal("0.6"), "amount": Decimal(qty) * Decimal("0.6"),
                                          "tariff_version": "bench", "source": "bench", "explanation": ""})
                    if not unpaid:
                        pay_id += 1
                        paid_on = end + timedelta(days=rng.randint(22, 40) if late and rng.random() < 0.5
                                                  else rng.randint(2, 18))
                        pays.append({"id": pay_id, "bill_id": bill_id, "customer_id": cid,
                                     "amount": Decimal(kwh) * Decimal("0.6"),
                                     "channel": rng.choice(("wechat_pay", "alipay", "bank_withholding", "counter")),
                                     "paid_at": datetime.combine(paid_on, datetime.min.time(), tzinfo=UTC),
                                     "idempotency_key": f"b{pay_id}", "status": "succeeded"})
            connection.execute(insert(Customer.__table__), people)
            connection.execute(insert(Bill.__table__), bills)
            if lines:
                connection.execute(insert(BillLine.__table__), lines)
            connection.execute(insert(Payment.__table__), pays)
            counts["bills"] += len(bills)
            counts["bill_lines"] += len(lines)
            counts["payments"] += len(pays)
    engine.dispose()
    conversations, orders = add_interactions(url, accounts, rng)
    counts.update(conversations=conversations, work_orders=orders)
    return counts


def measure(url: str) -> dict[str, float | int]:
    """The timed part (run in the child): `powerdesk cx refresh` — read the records once, write every
    customer's tags and classes, cluster and write the portraits (imports of scikit-learn included)."""
    from sqlalchemy.orm import Session

    from agent.experience.features import load_features
    from agent.experience.policy import load_policy
    from agent.experience.portraits import refresh_all
    from billing_core.db.engine import make_engine

    policy = load_policy()
    engine = make_engine(url)
    wall, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        tags, portraits = refresh_all(session, AS_OF, policy)  # `powerdesk cx refresh`
        session.commit()
    figures: dict[str, float | int] = {
        "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "customers": tags.customers,
        "tags": tags.tags, "k": portraits.k, "silhouette": portraits.score,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with Session(engine) as session:  # the share of reading the records (after the peak was taken)
        t0 = time.perf_counter()
        load_features(session, AS_OF, policy.window_months)
        figures["features_s"] = time.perf_counter() - t0
    return figures


def run_child(url: str) -> dict[str, float | int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--measure", url], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name: str, built: dict[str, int], setup_s: float, figures: dict[str, float | int]) -> None:
    print(f"{name}: {figures['customers']} customers ({', '.join(f'{k} {v}' for k, v in built.items() if k != 'customers')}); "
          f"set-up {setup_s:.1f} s (not timed)")
    print(f"  tags + portraits refresh {figures['wall_s']:.2f} s wall; CPU {figures['cpu_s']:.2f} s (one thread); "
          f"peak RSS {figures['peak_rss_mb']:.0f} MB")
    print(f"  of which reading the records {figures['features_s']:.2f} s (measured again after); {figures['tags']} tags; "
          f"k={figures['k']} (silhouette {figures['silhouette']:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=int, default=2000, help="demo customers (0 skips)")
    parser.add_argument("--generated", type=int, default=100000, help="generated customers (0 skips)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the databases here and reuse them on the next run "
                        "(the refresh rewrites only its own tables)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    cpu_100k = 0.0
    with tempfile.TemporaryDirectory(prefix="powerdesk-bench-cx-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for name, size in (("demo", args.demo), ("generated", args.generated)):
            if not size:
                continue
            path = where / f"{name}-{size}-{args.seed}.db"
            url = f"sqlite:///{path}"
            started = time.perf_counter()
            if args.keep and path.exists():
                built = {"customers": size, "reused": 1}
            else:
                built = (build_demo(url, size, args.seed, where) if name == "demo"
                         else build_generated(url, size, args.seed))
            setup = time.perf_counter() - started
            figures = run_child(url)
            report(name, built, setup, figures)
            if name == "generated" and size >= 100000:
                cpu_100k = float(figures["cpu_s"])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall time counts the neighbours, "
          f"CPU time is what one core spent")
    if cpu_100k:
        print(f"target: 100,000 customers ≤ 60 s on one core: {'met' if cpu_100k <= 60 else 'MISSED'} "
              f"({cpu_100k:.1f} s CPU, one thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
