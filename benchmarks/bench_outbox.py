"""Outbox delivery throughput with 2 worker processes to a local fake WeChat template API, and
exactly-once after a worker is killed mid-run.

Queues N bill-issued notices (the billing core's own rows) in a fresh database — PostgreSQL (the
throw-away server of tests/servers) by default, or SQLite — and starts two `powerdesk notify run
--drain` processes (python -m channels.notify.cli) against the fake WeChat of tests/notify, which
checks each request like WeChat (token, touser, template_id, data) and de-duplicates on
client_msg_id. Two runs:

1. steady: both workers to the end; throughput = messages / (last delivery − first delivery),
   and the wall time including process start-up;
2. kill: worker A is SIGKILLed by the fake right after it has taken one of A's messages, once N/3
   are delivered (between the
   provider's acceptance and the worker's record: the fake knows the sender by its User-Agent);
   B takes A's rows over after the lease.

Counted at the provider: delivered (unique openid + key), duplicates (a key delivered twice: must be
0), lost (rows not sent, or keys never delivered: must be 0), resent over the wire (requests beyond
one per key, absorbed by client_msg_id: > 0 shows the crash window was hit). Target: ≥ 1,000 messages/s with 2 workers, 0 duplicates, 0 lost.

    .venv/bin/python benchmarks/bench_outbox.py [--messages 20000] [--backend postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from billing_core.db.engine import make_engine, session_scope  # noqa: E402
from billing_core.db.migrate import upgrade  # noqa: E402
from billing_core.db.operations_models import NotificationStatus, OutboxNotification  # noqa: E402
from billing_core.operations.notifications import bill_issued_rows  # noqa: E402
from billing_core.operations.outbox import queue_new  # noqa: E402
from tests.notify.fake_providers import FakeWeChat, fake_wechat  # noqa: E402

TARGET_PER_SECOND = 1000


def queue(url: str, count: int) -> None:
    rows = []
    for i in range(1, count + 1):
        row = bill_issued_rows(bill_id=i, bill_no=f"GD{i:08d}", account_no=f"44{i:010d}", name="张三",
                               period="2026-11", amount=Decimal("242.55") + i % 100, total_kwh=Decimal("400"),
                               due_date=date(2026, 12, 20), channels=["wechat_template"],
                               reachable={"wechat_template": f"openid-{i}"})[0]
        row["bill_id"] = None
        rows.append(row)
    for start in range(0, count, 5000):
        with session_scope(url) as session:
            queue_new(session, rows[start:start + 5000])


def start_worker(url: str, api: FakeWeChat, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    env = {**os.environ, "POWERDESK_DATABASE_URL": url, "POWERDESK_WECHAT_APP_ID": api.app_id,
           "POWERDESK_WECHAT_APP_SECRET": api.secret, "POWERDESK_WECHAT_API_BASE": api.base_url,
           "PYTHONPATH": str(ROOT)}
    env.pop("POWERDESK_SMS_ACCESS_KEY_SECRET", None)
    env.pop("POWERDESK_SMTP_HOST", None)
    command = [sys.executable, "-m", "channels.notify.cli", "run", "--drain", "--batch", str(args.batch),
               "--concurrency", str(args.concurrency), "--poll", "0.2", "--lease", str(args.lease)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def one_run(url: str, args: argparse.Namespace, kill: bool) -> dict[str, float]:
    count = args.messages if not kill else max(args.messages // 2, 300)
    queue(url, count)
    first_delivery: list[float] = []
    with fake_wechat() as api:
        original = api.answer_send

        def timed(token: str | None, body: dict, agent: str = "") -> dict:
            answer = original(token, body, agent)
            if not first_delivery:
                first_delivery.append(time.perf_counter())
            return answer

        api.answer_send = timed  # type: ignore[method-assign]
        started = time.perf_counter()
        workers = [start_worker(url, api, args) for _ in range(args.workers)]
        if kill:
            api.kill_at = (workers[0].pid, count // 3)
        codes = []
        for process in workers:
            try:
                codes.append(process.wait(timeout=args.timeout))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        finished = time.perf_counter()
        last = finished
        delivered = len(api.delivered)
        over_the_wire = sum(api.attempts.values())
        keys = set(api.delivered)
        errors = [p.stderr.read().decode()[-800:] for p, c in zip(workers, codes) if c not in (0, -9) and p.stderr]
    with session_scope(url) as session:
        sent = session.scalar(select(func.count()).select_from(OutboxNotification)
                              .where(OutboxNotification.status == NotificationStatus.SENT.value)) or 0
        recorded = {(r, k) for r, k in session.execute(select(OutboxNotification.recipient, OutboxNotification.dedupe_key))}
        session.execute(OutboxNotification.__table__.delete())
    lost = count - sent + len(recorded - keys)
    duplicates = delivered - len(keys)  # api.delivered is keyed by (openid, key): any extra would show here
    for error in errors:
        print(error, file=sys.stderr)
    elapsed_send = last - (first_delivery[0] if first_delivery else started)
    return {"messages": count, "delivered": delivered, "duplicates": duplicates, "lost": lost,
            "resent_absorbed": over_the_wire - len(keys), "wall_s": finished - started,
            "per_second": count / elapsed_send if elapsed_send else 0.0,
            "exit_codes": codes, "killed": kill}  # type: ignore[dict-item]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.backend == "postgresql":
            from tests.servers.postgres import postgres_server

            server = stack.enter_context(postgres_server())
            url = server.create_database()
        else:
            url = f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'outbox.db'}"
        upgrade(url)
        results = [one_run(url, args, kill=False), one_run(url, args, kill=True)]
        make_engine(url).dispose()
    print(f"outbox delivery, {args.workers} workers, {args.backend}, batch {args.batch}, "
          f"{args.concurrency} threads each, fake WeChat on loopback")
    print(f"{'run':<8}{'messages':>10}{'msg/s':>10}{'wall s':>9}{'delivered':>11}{'dupes':>7}{'lost':>6}"
          f"{'resent':>8}  exits")
    for r in results:
        print(f"{'kill' if r['killed'] else 'steady':<8}{r['messages']:>10}{r['per_second']:>10.0f}{r['wall_s']:>9.1f}"
              f"{r['delivered']:>11}{r['duplicates']:>7}{r['lost']:>6}{r['resent_absorbed']:>8}  {r['exit_codes']}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"worker CPU (all runs): {usage.ru_utime + usage.ru_stime:.1f} s; target ≥ {TARGET_PER_SECOND} msg/s, "
          "0 duplicates, 0 lost")
    steady, killed = results
    ok = (steady["per_second"] >= TARGET_PER_SECOND and all(r["duplicates"] == 0 and r["lost"] == 0 for r in results)
          and killed["exit_codes"][0] == -9)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
