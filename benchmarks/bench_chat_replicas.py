"""Chat through a real nginx in front of 1 and 2 `powerdesk serve` replicas on PostgreSQL + Redis.

    .venv/bin/python benchmarks/bench_chat_replicas.py [--conversations 40] [--concurrency 8]

Throw-away PostgreSQL, Redis and nginx (tests/servers/; nginx runs docs/deploy/nginx.conf with
ports and paths changed), the demo utility seeded once; then for 1 and for 2 replicas: a closed loop
of `--concurrency` clients, each playing 6-turn conversations (greeting, how-to, verification, bill
lookup; benchmarks/chat_load.py's scripts) through nginx. Printed per replica count:
- turns/s and p50/p95 latency of a turn as the client sees it (through nginx);
- Redis: commands per turn (INFO commandstats, reset before the run), and bytes per conversation
  (MEMORY USAGE of every key after the run, divided by the conversations);
- PostgreSQL: transactions per turn (pg_stat_database xact_commit + xact_rollback deltas).
No target of its own (chat_load.py holds the chat latency target); on the shared 2-core machine the
two replicas, nginx, both servers and the client compete for the same cores, so the 2-replica
figure measures contention more than scaling — the per-turn Redis and PostgreSQL figures carry over.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.chat_load import percentile, scripts  # noqa: E402
from tests.channels.serve_process import POWERDESK, serve_process  # noqa: E402
from tests.servers.nginx import nginx_server  # noqa: E402
from tests.servers.postgres import postgres_server  # noqa: E402
from tests.servers.redis import redis_server  # noqa: E402


def customers(database_url: str) -> list[tuple[str, str, str]]:
    """(account, phone last 4, latest period) of the seeded customers that have a bill."""
    from sqlalchemy import select

    from billing_core.db.engine import make_engine
    from billing_core.db.models import Bill, Customer

    engine = make_engine(database_url)
    found = []
    with engine.connect() as connection:
        for account, phone, cid in connection.execute(select(Customer.account_no, Customer.phone, Customer.id)
                                                      .where(Customer.phone.is_not(None))):
            period = connection.execute(select(Bill.period).where(Bill.customer_id == cid)
                                        .order_by(Bill.period.desc())).scalar()
            if period:
                found.append((account, phone[-4:], period))
    engine.dispose()
    return found


async def converse(client: httpx.AsyncClient, script: list[str], latencies: list[float], errors: list[str]) -> None:
    created = (await client.post("/api/chat/conversations")).json()
    headers = {"X-Conversation-Token": created["conversation_token"]}
    for text in script:
        started = time.perf_counter()
        response = await client.post(f"/api/chat/conversations/{created['conversation_id']}/messages?stream=false",
                                     json={"text": text}, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            errors.append(f"{response.status_code} {response.text[:80]}")


async def load(url: str, plays: list[list[str]], concurrency: int) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    queue = list(plays)

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while queue:
                await converse(client, queue.pop(), latencies, errors)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


def pg_transactions(pg_port: int, dbname: str) -> int:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="postgres",
                         autocommit=True) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                                 (dbname,)).fetchone()
    return int(row[0])


def redis_figures(redis_url: str) -> tuple[int, int]:
    """(commands since the last reset, bytes of all keys)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    commands = sum(int(v["calls"]) for k, v in client.info("commandstats").items()
                   if k not in ("cmdstat_info", "cmdstat_config", "cmdstat_memory", "cmdstat_scan"))
    size = sum(int(client.memory_usage(key) or 0) for key in client.scan_iter(count=1000))
    return commands, size


def measure(env: dict[str, str], pg_port: int, replicas: int, plays: list[list[str]],
            concurrency: int) -> dict[str, Any]:
    import redis

    with ExitStack() as stack:
        servers = [stack.enter_context(serve_process({**env, "POWERDESK_REPLICA_NAME": f"r{i + 1}"}))
                   for i in range(replicas)]
        nginx = stack.enter_context(nginx_server([s.url.removeprefix("http://") for s in servers]))
        asyncio.run(load(nginx.url, plays[:concurrency], concurrency))  # warm: caches, pools, keep-alive
        client = redis.Redis.from_url(env["POWERDESK_REDIS_URL"])
        client.flushdb()
        client.config_resetstat()
        dbname = env["POWERDESK_DATABASE_URL"].rsplit("/", 1)[1]
        xacts = pg_transactions(pg_port, dbname)
        latencies, errors, seconds = asyncio.run(load(nginx.url, plays, concurrency))
        time.sleep(11)  # an idle backend flushes its pg_stat_database counters after up to 10 s
        xacts = pg_transactions(pg_port, dbname) - xacts
        commands, size = redis_figures(env["POWERDESK_REDIS_URL"])
    ordered = sorted(latencies)
    turns = len(latencies)
    return {"replicas": replicas, "conversations": len(plays), "turns": turns, "errors": len(errors),
            "turns_per_second": round(turns / seconds, 1), "p50_ms": round(percentile(ordered, 50), 1),
            "p95_ms": round(percentile(ordered, 95), 1),
            "redis_commands_per_turn": round(commands / turns, 2),
            "redis_bytes_per_conversation": round(size / len(plays)),
            "pg_transactions_per_turn": round(xacts / turns, 2), "first_errors": errors[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args()
    with postgres_server() as pg, redis_server() as redis:
        env = {"POWERDESK_DATABASE_URL": pg.create_database(), "POWERDESK_REDIS_URL": redis.url,
               "POWERDESK_VAR_DIR": tempfile.mkdtemp(prefix="powerdesk-bench-replicas-"),
               "POWERDESK_SESSION_SECRET": "bench-replicas", "POWERDESK_RATE_LIMIT_PER_MINUTE": "100000"}
        full = {**os.environ, **env}
        subprocess.run([str(POWERDESK), "db", "upgrade"], env=full, check=True, capture_output=True)
        subprocess.run([str(POWERDESK), "demo", "seed", "--customers", str(args.customers)], env=full,
                       check=True, capture_output=True)
        plays = scripts(customers(env["POWERDESK_DATABASE_URL"]))
        plays = (plays * (args.conversations // max(len(plays), 1) + 1))[:args.conversations]
        results = [measure(env, pg.port, n, plays, args.concurrency) for n in args.replicas]
    for result in results:
        print(f"{result['replicas']} replica(s): {result['turns']} turns in {result['conversations']} conversations, "
              f"{result['turns_per_second']} turns/s, p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
              f"errors {result['errors']}; Redis {result['redis_commands_per_turn']} commands/turn, "
              f"{result['redis_bytes_per_conversation']} bytes/conversation; PostgreSQL "
              f"{result['pg_transactions_per_turn']} transactions/turn")
    print(json.dumps({"load_average": os.getloadavg()[0], "results": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
