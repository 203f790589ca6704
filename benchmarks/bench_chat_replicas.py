"""Chat through a real nginx in front of 1 and 2 `powerdesk serve` replicas on PostgreSQL + Redis + Chroma.

    .venv/bin/python benchmarks/bench_chat_replicas.py [--conversations 40] [--concurrency 8] [--kill-replica]

Throw-away PostgreSQL (with pg_stat_statements preloaded), Redis, a Chroma server (`chroma run`,
tests/servers/chroma.py; the knowledge base ingested into it by `powerdesk kb ingest`, the replicas
reach it by POWERDESK_CHROMA_URL) and nginx (docs/deploy/nginx.conf with ports and paths changed);
the demo utility seeded once. Then for 1 and for 2 replicas: a closed loop of `--concurrency`
clients, each playing 6-turn conversations (greeting, how-to, verification, bill lookup;
benchmarks/chat_load.py's scripts) through nginx, sending a message id with every message and
resending it on a 5xx or a cut connection, as the page does (channels/web/chat.js).
Printed per replica count:
- turns/s and p50/p95 latency of a turn as the client sees it (through nginx, retries included);
- Redis: commands per turn (INFO commandstats, reset before the run), bytes per conversation
  (MEMORY USAGE of every key after the run, divided by the conversations), CPU per turn (INFO cpu);
- PostgreSQL: transactions per turn (pg_stat_database), statements (round trips) per turn from
  pg_stat_statements and the top statements by calls, CPU per turn of the whole cluster (/proc,
  bench_cycle_workers.postgres_cpu_seconds); Chroma server and replica CPU per turn (/proc);
- records: conversations and turn records in PostgreSQL against what the clients sent and got
  answered: lost (answered, no record) and duplicated (one message id recorded twice), target 0/0.
`--kill-replica` adds a run of 2 replicas where one is SIGKILLed when half the turns are answered;
the clients keep going (nginx passes a refused connection to the other replica; a request cut in
flight is a 502 the client resends) and the same lost/duplicated count is printed.
No target of its own (chat_load.py holds the chat latency target); on the shared 2-core machine the
two replicas, nginx, the servers and the client compete for the same cores, so the 2-replica figure
measures contention more than scaling — the per-turn Redis, PostgreSQL and Chroma figures carry
over, and docs/deploy/README.md turns them into the capacity of one Redis and one PostgreSQL.
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
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.bench_cycle_workers import postgres_cpu_seconds  # noqa: E402
from benchmarks.chat_load import percentile, scripts  # noqa: E402
from tests.channels.serve_process import POWERDESK, ServeProcess, serve_process  # noqa: E402
from tests.servers.chroma import chroma_server  # noqa: E402
from tests.servers.nginx import nginx_server  # noqa: E402
from tests.servers.postgres import postgres_server  # noqa: E402
from tests.servers.redis import redis_server  # noqa: E402

PG_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track_utility": "on"}
TOP_STATEMENTS = 25  # in the JSON; the first 12 are printed


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


@dataclass
class Sent:
    """What the clients did: every message id sent per conversation, which got a 200, the retries."""

    messages: dict[str, list[str]] = field(default_factory=dict)  # conversation id -> message ids
    answered: set[tuple[str, str]] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retries: int = 0


async def _post_like_the_page(client: httpx.AsyncClient, url: str, sent: Sent, retry_for: float = 60,
                              **kwargs: Any) -> httpx.Response | None:
    """chat.js: on a 5xx or a cut connection send the same request again (after Retry-After)."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            response = await client.post(url, **kwargs)
            if response.status_code < 500:
                return response
            problem = f"{response.status_code} {response.text[:80]}"
            pause = float(response.headers.get("retry-after", "0.5"))
        except httpx.TransportError as exc:
            problem, pause = f"{type(exc).__name__}", 0.5
        if time.monotonic() > deadline:
            sent.errors.append(problem)
            return None
        sent.retries += 1
        await asyncio.sleep(min(pause, 2))


async def converse(client: httpx.AsyncClient, script: list[str], sent: Sent) -> None:
    created = await _post_like_the_page(client, "/api/chat/conversations", sent)
    if created is None or created.status_code not in (200, 201):
        sent.errors.append(f"create {created.status_code if created else 'gave up'}")
        return
    body = created.json()
    cid, headers = body["conversation_id"], {"X-Conversation-Token": body["conversation_token"]}
    sent.messages[cid] = []
    for text in script:
        message_id = f"m-{uuid.uuid4().hex[:16]}"
        sent.messages[cid].append(message_id)
        started = time.perf_counter()
        response = await _post_like_the_page(client, f"/api/chat/conversations/{cid}/messages?stream=false",
                                             sent, json={"text": text, "message_id": message_id},
                                             headers=headers)
        sent.latencies.append((time.perf_counter() - started) * 1000)
        if response is not None and response.status_code == 200:
            sent.answered.add((cid, message_id))
        elif response is not None:
            sent.errors.append(f"{response.status_code} {response.text[:80]}")


async def load(url: str, plays: list[list[str]], concurrency: int,
               kill: ServeProcess | None = None) -> tuple[Sent, float, float | None]:
    """The closed loop; with `kill`, SIGKILL that replica once half the turns are answered."""
    sent = Sent()
    queue = list(plays)
    turns = sum(len(play) for play in plays)
    killed_at: list[float] = []

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            while queue:
                await converse(client, queue.pop(), sent)

    async def killer() -> None:
        while kill is not None and len(sent.latencies) < turns // 2:
            await asyncio.sleep(0.005)
        if kill is not None:
            kill.kill()
            killed_at.append(time.perf_counter())

    started = time.perf_counter()
    await asyncio.gather(killer(), *(client_loop() for _ in range(concurrency)))
    return sent, time.perf_counter() - started, (killed_at[0] - started) if killed_at else None


def _admin(pg_port: int):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="postgres", autocommit=True)


def pg_transactions(pg_port: int, dbname: str) -> int:
    with _admin(pg_port) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                                 (dbname,)).fetchone()
    return int(row[0])


def pg_statements(pg_port: int, dbname: str, reset: bool = False) -> tuple[int, list[tuple[int, str]]]:
    """(statements the database's clients ran since the last reset, the top ones by calls)."""
    where = "dbid = (SELECT oid FROM pg_database WHERE datname = %s)"
    with _admin(pg_port) as connection:
        if reset:
            connection.execute("SELECT pg_stat_statements_reset()")
            return 0, []
        total = connection.execute(f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE {where}",
                                   (dbname,)).fetchone()[0]
        top = connection.execute(f"SELECT calls, query FROM pg_stat_statements WHERE {where} "
                                 "ORDER BY calls DESC LIMIT %s", (dbname, TOP_STATEMENTS)).fetchall()
    return int(total), [(int(calls), " ".join(query.split())) for calls, query in top]


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (a replica, the Chroma server) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text()
    fields = fields[fields.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_figures(redis_url: str) -> tuple[int, int, float]:
    """(commands since the last reset, bytes of all keys, CPU seconds of the server so far)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    commands = sum(int(v["calls"]) for k, v in client.info("commandstats").items()
                   if k not in ("cmdstat_info", "cmdstat_config", "cmdstat_memory", "cmdstat_scan"))
    size = sum(int(client.memory_usage(key) or 0) for key in client.scan_iter(count=1000))
    return commands, size, redis_cpu_seconds(redis_url)


def redis_cpu_seconds(redis_url: str) -> float:
    import redis

    cpu = redis.Redis.from_url(redis_url).info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def record_counts(database_url: str, sent: Sent) -> dict[str, int]:
    """The clients' conversations and messages against the records PostgreSQL holds for them."""
    from sqlalchemy import select

    from agent.models import ConversationRecord, TurnRecord
    from billing_core.db.engine import make_engine

    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(ConversationRecord.conversation_id, TurnRecord.message_id)
                                  .join(TurnRecord, TurnRecord.conversation_pk == ConversationRecord.id)
                                  .where(ConversationRecord.conversation_id.in_(list(sent.messages)))).all()
        conversations = connection.execute(select(ConversationRecord.conversation_id).where(
            ConversationRecord.conversation_id.in_(list(sent.messages)))).scalars().all()
    engine.dispose()
    recorded = Counter((cid, mid) for cid, mid in rows)
    sent_ids = {(cid, mid) for cid, mids in sent.messages.items() for mid in mids}
    with_answers = {cid for cid, _ in sent.answered}
    return {"conversations_started": len(sent.messages), "conversations_recorded": len(set(conversations)),
            "conversation_records_doubled": len(conversations) - len(set(conversations)),
            "conversations_answered_but_unrecorded": len(with_answers - set(conversations)),
            "messages_sent": len(sent_ids), "messages_answered": len(sent.answered), "turn_records": len(rows),
            "lost": sum(1 for key in sent.answered if recorded[key] == 0),
            "duplicated": sum(n - 1 for n in recorded.values() if n > 1),
            "recorded_unanswered": sum(1 for key in recorded if key in sent_ids and key not in sent.answered),
            "recorded_unknown": sum(1 for key in recorded if key not in sent_ids)}


def measure(env: dict[str, str], pg: Any, chroma_pid: int, replicas: int, plays: list[list[str]],
            concurrency: int, kill: bool = False) -> dict[str, Any]:
    import redis

    dbname = env["POWERDESK_DATABASE_URL"].rsplit("/", 1)[1]
    chroma_at_start = process_cpu_seconds(chroma_pid)
    with ExitStack() as stack:
        servers = [stack.enter_context(serve_process({**env, "POWERDESK_REPLICA_NAME": f"r{i + 1}"}))
                   for i in range(replicas)]
        nginx = stack.enter_context(nginx_server([s.url.removeprefix("http://") for s in servers]))
        asyncio.run(load(nginx.url, plays[:concurrency], concurrency))  # warm: caches, pools, keep-alive
        chroma_at_start = process_cpu_seconds(chroma_pid) - chroma_at_start
        client = redis.Redis.from_url(env["POWERDESK_REDIS_URL"])
        client.flushdb()
        client.config_resetstat()
        xacts = pg_transactions(pg.port, dbname)
        pg_statements(pg.port, dbname, reset=True)
        cpu_before = (postgres_cpu_seconds(pg.data_dir), redis_cpu_seconds(env["POWERDESK_REDIS_URL"]),
                      process_cpu_seconds(chroma_pid),
                      sum(process_cpu_seconds(s.process.pid) for s in servers))
        sent, seconds, killed_after = asyncio.run(load(nginx.url, plays, concurrency,
                                                       kill=servers[0] if kill else None))
        live = [s for s in servers if s.process.poll() is None]
        pg_cpu = postgres_cpu_seconds(pg.data_dir) - cpu_before[0]
        chroma_cpu = process_cpu_seconds(chroma_pid) - cpu_before[2]
        replica_cpu = sum(process_cpu_seconds(s.process.pid) for s in live) - cpu_before[3]
        statements, top = pg_statements(pg.port, dbname)
        commands, size, redis_cpu = redis_figures(env["POWERDESK_REDIS_URL"])
        redis_cpu -= cpu_before[1]
        time.sleep(11)  # an idle backend flushes its pg_stat_database counters after up to 10 s
        xacts = pg_transactions(pg.port, dbname) - xacts
    if not sent.latencies:
        raise SystemExit(f"no turn was sent: {sent.errors[:5]}")
    records = record_counts(env["POWERDESK_DATABASE_URL"], sent)
    ordered = sorted(sent.latencies)
    turns = len(sent.latencies)
    result = {"replicas": replicas, "killed": kill, "conversations": len(plays), "turns": turns,
              "errors": len(sent.errors), "retries": sent.retries,
              "turns_per_second": round(turns / seconds, 1), "p50_ms": round(percentile(ordered, 50), 1),
              "p95_ms": round(percentile(ordered, 95), 1), "max_ms": round(ordered[-1], 1),
              "redis_commands_per_turn": round(commands / turns, 2),
              "redis_bytes_per_conversation": round(size / len(plays)),
              "redis_cpu_ms_per_turn": round(redis_cpu * 1000 / turns, 3),
              "pg_transactions_per_turn": round(xacts / turns, 2),
              "pg_statements_per_turn": round(statements / turns, 2),
              "pg_cpu_ms_per_turn": round(pg_cpu * 1000 / turns, 3),
              "chroma_cpu_ms_per_turn": round(chroma_cpu * 1000 / turns, 3),
              "chroma_cpu_s_replica_start": round(chroma_at_start, 2),
              "replica_cpu_ms_per_turn": None if kill else round(replica_cpu * 1000 / turns, 2),
              "pg_top_statements": [{"calls_per_turn": round(calls / turns, 2), "query": query[:160]}
                                    for calls, query in top],
              "records": records, "first_errors": sent.errors[:3]}
    if killed_after is not None:
        result["killed_after_s"] = round(killed_after, 2)
    return result


def report(result: dict[str, Any]) -> str:
    r, rec = result, result["records"]
    head = f"{r['replicas']} replica(s)" + (f", r1 SIGKILLed after {r['killed_after_s']} s" if r["killed"] else "")
    lines = [f"{head}: {r['turns']} turns in {r['conversations']} conversations, {r['turns_per_second']} turns/s, "
             f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms, errors {r['errors']}, "
             f"resends {r['retries']}",
             f"  Redis {r['redis_commands_per_turn']} commands/turn, {r['redis_bytes_per_conversation']} bytes/"
             f"conversation, {r['redis_cpu_ms_per_turn']} ms CPU/turn; PostgreSQL {r['pg_transactions_per_turn']} "
             f"transactions/turn, {r['pg_statements_per_turn']} statements/turn, {r['pg_cpu_ms_per_turn']} ms "
             f"CPU/turn; Chroma {r['chroma_cpu_ms_per_turn']} ms CPU/turn ({r['chroma_cpu_s_replica_start']} s while "
             f"the replicas loaded the knowledge base from it); replicas "
             + (f"{r['replica_cpu_ms_per_turn']} ms CPU/turn" if r["replica_cpu_ms_per_turn"] is not None
                else "CPU/turn not comparable (the killed replica's CPU is lost)"),
             f"  records: conversations {rec['conversations_recorded']}/{rec['conversations_started']}, "
             f"turns {rec['turn_records']} for {rec['messages_answered']} answered of {rec['messages_sent']} sent: "
             f"lost {rec['lost']}, duplicated {rec['duplicated']} (recorded but unanswered "
             f"{rec['recorded_unanswered']})",
             "  top statements (calls/turn):"]
    lines += [f"    {s['calls_per_turn']:6.2f}  {s['query'][:110]}" for s in r["pg_top_statements"][:12]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--kill-replica", action="store_true",
                        help="also run 2 replicas with one SIGKILLed midway; print lost/duplicated records")
    args = parser.parse_args()
    with postgres_server(PG_SETTINGS) as pg, redis_server() as redis, chroma_server() as chroma:
        env = {"POWERDESK_DATABASE_URL": pg.create_database(), "POWERDESK_REDIS_URL": redis.url,
               "POWERDESK_CHROMA_URL": chroma.url,
               "POWERDESK_VAR_DIR": tempfile.mkdtemp(prefix="powerdesk-bench-replicas-"),
               "POWERDESK_SESSION_SECRET": "bench-replicas", "POWERDESK_RATE_LIMIT_PER_MINUTE": "100000"}
        full = {**os.environ, **env}
        subprocess.run([str(POWERDESK), "db", "upgrade"], env=full, check=True, capture_output=True)
        subprocess.run([str(POWERDESK), "demo", "seed", "--customers", str(args.customers)], env=full,
                       check=True, capture_output=True)
        ingested = subprocess.run([str(POWERDESK), "kb", "ingest"], env=full, check=True, capture_output=True,
                                  text=True).stdout.strip().splitlines()[-1]
        print(f"knowledge base in the Chroma server {chroma.url}: {ingested}")
        with _admin(pg.port) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        plays = scripts(customers(env["POWERDESK_DATABASE_URL"]))
        plays = (plays * (args.conversations // max(len(plays), 1) + 1))[:args.conversations]
        runs = [(n, False) for n in args.replicas] + ([(2, True)] if args.kill_replica else [])
        results = [measure(env, pg, chroma.process.pid, n, plays, args.concurrency, kill) for n, kill in runs]
    for result in results:
        print(report(result))
    print(json.dumps({"load_average": os.getloadavg()[0], "results": results}, ensure_ascii=False))
    bad = [r for r in results if r["records"]["lost"] or r["records"]["duplicated"]]
    if bad:
        raise SystemExit(f"records lost or duplicated: {[r['records'] for r in bad]}")


if __name__ == "__main__":
    main()
