"""Web chat under load: 200 concurrent conversations against one `powerdesk serve`, local brain.

Target (issue 6): >= 200 turns/s with p95 <= 150 ms on this 2-core machine. Each simulated
customer opens a conversation and sends its turns one after another, each over the real web
chat endpoint (SSE stream read to the end), like the page does. Loopback only; bounded by
--conversations, --turns and --max-seconds.

    .venv/bin/python benchmarks/chat_load.py [--conversations 200] [--turns 6] [--max-seconds 120]

Without --url it seeds a small demo utility in a temp dir and starts `powerdesk serve` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def scripts(customers: list[tuple[str, str, str]]) -> list[list[str]]:
    """Mixed conversations: greeting, how-to questions, verification and a bill lookup."""
    out = []
    for account, last4, period in customers:
        year, month = period.split("-")
        words = f"{int(year)}年{int(month)}月"
        out.append(["你好", f"查一下{words}的电费", f"户号{account}，手机号后四位{last4}",
                    f"查一下{words}的电费", "交了没有", "谢谢，再见"])
        out.append([f"户号{account}，手机号后四位{last4}", f"{words}电费多少", "电费怎么交", "好的", "再见", "满意"])
    return out


def prepare_database(var_dir: str, customers: int) -> list[tuple[str, str, str]]:
    os.environ["POWERDESK_VAR_DIR"] = var_dir
    env = {**os.environ}
    powerdesk = Path(sys.executable).with_name("powerdesk")
    subprocess.run([str(powerdesk), "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([str(powerdesk), "demo", "seed", "--if-empty", "--customers", str(customers)], env=env,
                   check=True, capture_output=True)
    from sqlalchemy import select

    from billing_core.db import session_scope
    from billing_core.models import Bill, Customer

    found = []
    with session_scope() as session:
        for customer in session.scalars(select(Customer).where(Customer.phone.is_not(None))).all():
            bill = session.scalars(select(Bill).where(Bill.customer_id == customer.id)
                                   .order_by(Bill.period.desc())).first()
            if bill is not None:
                found.append((customer.account_no, customer.phone[-4:], bill.period))
    return found


async def conversation(client: httpx.AsyncClient, index: int, script: list[str], stop_at: float,
                       latencies: list[float], errors: list[str]) -> None:
    cid = f"web-load{index:05d}{int(time.time())}"
    for text in script:
        if time.monotonic() > stop_at:
            return
        started = time.perf_counter()
        try:
            async with client.stream("POST", f"/api/chat/conversations/{cid}/messages",
                                     json={"text": text}) as response:
                body = b"".join([chunk async for chunk in response.aiter_bytes()])
            if response.status_code != 200 or b"event: reply" not in body:
                errors.append(f"{response.status_code}")
                continue
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
            continue
        latencies.append((time.perf_counter() - started) * 1000)


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU of process `pid` (Linux /proc), or None when it cannot be read."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(url: str, conversations: int, turns: int, max_seconds: float,
                   customers: list[tuple[str, str, str]], server_pid: int | None = None) -> None:
    pool = scripts(customers or [("000000000000", "0000", "2026-09")])
    limits = httpx.Limits(max_connections=conversations, max_keepalive_connections=conversations)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.monotonic() + max_seconds
        cpu0, wall0 = time.process_time(), time.perf_counter()
        server_cpu0 = process_cpu_seconds(server_pid)
        await asyncio.gather(*(
            conversation(client, i, pool[i % len(pool)][:turns], stop_at, latencies, errors)
            for i in range(conversations)))
        wall = time.perf_counter() - wall0
        server_cpu1 = process_cpu_seconds(server_pid)
    if not latencies:
        print("no successful turns", errors[:5])
        return
    print(f"conversations: {conversations} concurrent, {len(latencies)} turns in {wall:.1f} s "
          f"({len(errors)} errors{': ' + ', '.join(sorted(set(errors))) if errors else ''})")
    print(f"throughput: {len(latencies) / wall:.1f} turns/s (target >= 200)")
    print(f"latency: p50 {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
          f"max {max(latencies):.0f} ms (target p95 <= 150 ms)")
    print(f"load average: {os.getloadavg()[0]:.2f} (2 cores shared); "
          f"client CPU {time.process_time() - cpu0:.1f} s")
    if server_cpu0 is not None and server_cpu1 is not None:
        used = server_cpu1 - server_cpu0
        print(f"server CPU {used:.1f} s = {used / len(latencies) * 1000:.1f} ms per turn "
              f"(one process tops out near {len(latencies) / used:.0f} turns/s on a free core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="an already running service (loopback only)")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=6, help="turns per conversation (max 6)")
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--customers", type=int, default=60, help="demo customers to seed")
    args = parser.parse_args()
    if not 1 <= args.conversations <= 1000 or not 1 <= args.turns <= 6 or not 1 <= args.max_seconds <= 600:
        parser.error("--conversations 1..1000, --turns 1..6, --max-seconds 1..600")

    from tests.channels.serve_process import serve_process

    if args.url:
        if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("--url: loopback addresses only")
        asyncio.run(run_load(args.url, args.conversations, args.turns, args.max_seconds, []))
        return
    var_dir = tempfile.mkdtemp(prefix="powerdesk-chat-load-")
    customers = prepare_database(var_dir, args.customers)
    env = {"POWERDESK_VAR_DIR": var_dir, "POWERDESK_RATE_LIMIT_PER_MINUTE": "100000"}
    with serve_process(env) as server:
        asyncio.run(run_load(server.url, args.conversations, args.turns, args.max_seconds, customers,
                             server_pid=server.process.pid))


if __name__ == "__main__":
    main()
