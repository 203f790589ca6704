"""Web chat under load: many customers in conversation at once against one `powerdesk serve`, local brain.

Target (issue 6): 200 concurrent web conversations, >= 200 turns/s with p95 <= 150 ms, 2-core machine.

What the target means. 200 customers are in conversation at the same time and each sends about
one message a second: 200 turns/s in total, and a customer waits for each reply before the next
message. By Little's law (turns in flight = throughput x latency) a *closed* loop of 200
conversations with no think time keeps 200 turns in flight, so p95 <= 150 ms would need
200 / 0.15 s = 1,333 turns/s; that is a different (and impossible here) target. So the default
is an *open-loop* schedule:

- `--rate` turns/s in total (default 200) spread over `--conversations` (default 200): each
  conversation is due to send a message every conversations / rate seconds (1 s by default), the
  start times staggered evenly over the first period with a little seeded jitter.
- Within a conversation messages stay sequential. If a reply comes late, the next message goes out
  at once, and every latency is measured from the message's *scheduled* time, so a slow server is
  not hidden by the client waiting for it (no coordinated omission).
- Each conversation runs one of the 6-turn scripts below (greeting, bill questions, verification,
  payment status, goodbye), then starts a new conversation (the server issues its id and token), until `--duration` seconds; the
  first `--warmup` seconds are left out of the figures. Turns scheduled in the window that have
  not finished when the run stops are counted as "unfinished" and enter the percentiles with
  their wait so far (a lower bound), so a backlog shows up in p95 rather than disappearing.

`--closed-loop` drops the think time (send the next message as soon as the reply arrives,
latency from sending): a max-throughput figure, not the target's latency.

The client must not eat the cores it measures: one keep-alive HTTP/1.1 connection per
conversation over plain asyncio streams (uvloop when installed), hand-written request bytes and a
small chunked / Content-Length decoder; it prints its own CPU per turn next to the server's
(the serve process and its worker processes, from /proc) and Redis's when it runs.

    .venv/bin/python benchmarks/chat_load.py [--rate 200] [--conversations 200] [--duration 60]
        [--warmup 5] [--closed-loop] [--workers N] [--json PATH] [--url http://127.0.0.1:8000]

Without --url it seeds a demo utility (SQLite) in a temp dir and starts `powerdesk serve` itself;
with --workers N > 1 it also starts a throw-away redis-server (the workers share state through it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POWERDESK = Path(sys.executable).with_name("powerdesk")
DRAIN_SECONDS = 10.0  # after --duration, replies already in flight get this long to arrive
TARGET_TURNS_PER_SECOND = 200.0
TARGET_P95_MS = 150.0


# ---------------------------------------------------------------- conversations to send

def scripts(customers: list[tuple[str, str, str]]) -> list[list[str]]:
    """Mixed 6-turn conversations: greeting, how-to questions, verification and a bill lookup."""
    out = []
    for account, last4, period in customers:
        year, month = period.split("-")
        words = f"{int(year)}年{int(month)}月"
        out.append(["你好", f"查一下{words}的电费", f"户号{account}，手机号后四位{last4}",
                    f"查一下{words}的电费", "交了没有", "谢谢，再见"])
        out.append([f"户号{account}，手机号后四位{last4}", f"{words}电费多少", "电费怎么交",
                    "好的", "再见", "满意"])
    return out


def prepare_database(var_dir: str, customers: int) -> list[tuple[str, str, str]]:
    """Migrate and seed a demo utility in `var_dir`; return (account, phone last 4, latest period)."""
    os.environ["POWERDESK_VAR_DIR"] = var_dir
    env = {**os.environ}
    subprocess.run([str(POWERDESK), "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([str(POWERDESK), "demo", "seed", "--if-empty", "--customers", str(customers)], env=env,
                   check=True, capture_output=True)
    from sqlalchemy import select

    from billing_core.db.engine import session_scope
    from billing_core.db.models import Bill, Customer

    found = []
    with session_scope() as session:
        for customer in session.scalars(select(Customer).where(Customer.phone.is_not(None))).all():
            bill = session.scalars(select(Bill).where(Bill.customer_id == customer.id)
                                   .order_by(Bill.period.desc())).first()
            if bill is not None:
                found.append((customer.account_no, customer.phone[-4:], bill.period))
    return found


# ---------------------------------------------------------------- a lean HTTP/1.1 client

class ConnectionLost(Exception):
    """The server closed the connection (or it broke) before a whole response arrived."""


class StaleConnection(Exception):
    """A kept-alive connection was closed before the server answered anything: safe to resend."""


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it go one after another.

    Hand-written so that the client costs a small fraction of what it measures: one buffer, one
    read syscall per burst of chunks, no per-request objects beyond the bytes themselves.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.buffer = bytearray()
        self.connects = 0

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.buffer.clear()
        self.connects += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _fill(self) -> None:
        assert self.reader is not None
        data = await self.reader.read(65536)
        if not data:
            raise ConnectionLost("closed by server")
        self.buffer += data

    async def _take_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[:end + 2]
        return line

    async def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            await self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def post_json(self, path: str, body: bytes, headers: bytes = b"") -> tuple[int, bytes]:
        """POST `body` and read the whole response; reconnects once if a kept-alive connection went stale.
        `headers`: extra header lines, each ending in CRLF."""
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n").encode() + headers + \
            b"\r\n" + body
        if self.reader is not None and self.reader.at_eof():
            self.close()  # the server closed it while idle (uvicorn's keep-alive timeout is 5 s)
        reused = self.writer is not None
        if not reused:
            await self._open()
        try:
            try:
                return await self._exchange(request, stale_possible=reused)
            except StaleConnection:
                # The server closed an idle keep-alive connection as we sent: it read nothing, so
                # sending again on a new connection is safe (browsers do the same).
                self.close()
                await self._open()
                return await self._exchange(request, stale_possible=False)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, request: bytes, stale_possible: bool) -> tuple[int, bytes]:
        assert self.writer is not None
        self.writer.write(request)
        try:
            status_line = await self._take_line()
        except (ConnectionLost, ConnectionError) as exc:
            if stale_possible and not self.buffer:
                raise StaleConnection() from exc
            raise
        return await self._read_rest(status_line)

    async def _read_rest(self, status_line: bytes) -> tuple[int, bytes]:
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ConnectionLost(f"bad status line {status_line[:40]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        while line := await self._take_line():
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            pieces = []
            while True:
                size = int(((await self._take_line()).split(b";", 1)[0]).strip(), 16)
                if size == 0:
                    while await self._take_line():  # trailers, then the empty line
                        pass
                    break
                pieces.append((await self._take(size + 2))[:-2])  # data + CRLF
            body = b"".join(pieces)
        elif b"content-length" in headers:
            body = await self._take(int(headers[b"content-length"]))
        else:  # no framing: the body runs to the end of the connection
            assert self.reader is not None
            body = bytes(self.buffer) + await self.reader.read()
            self.buffer.clear()
            headers[b"connection"] = b"close"
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, body


# ---------------------------------------------------------------- the load

@dataclass
class Results:
    """Everything measured, in one place; times are time.perf_counter() seconds."""

    window_start: float = 0.0
    window_end: float = 0.0
    completed: list[tuple[float, float]] = field(default_factory=list)  # (scheduled or sent, done)
    errors: Counter[str] = field(default_factory=Counter)
    unfinished: list[float] = field(default_factory=list)  # lower bounds (s) of turns never answered
    scheduled_in_window: int = 0
    dispatch_lag: list[float] = field(default_factory=list)  # on-time sends: how late the client was
    connects: int = 0
    cpu_before: dict[str, float | None] = field(default_factory=dict)
    cpu_after: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Plan:
    host: str
    port: int
    rate: float
    conversations: int
    duration: float
    warmup: float
    closed_loop: bool
    seed: int
    pool: list[list[str]]


async def converse(plan: Plan, index: int, start: float, results: Results) -> None:
    """One customer: 6-turn scripts one after another, each on a new conversation."""
    rng = random.Random(plan.seed * 100_003 + index)
    period = plan.conversations / plan.rate
    end = start + plan.duration
    hard_stop = end + DRAIN_SECONDS
    connection = Connection(plan.host, plan.port)
    due = start + (index + rng.random() * 0.5) * period / plan.conversations  # staggered, jittered
    bodies: dict[str, bytes] = {}

    def counts(scheduled: float) -> bool:
        """Is a turn scheduled at this time part of the figures (after warm-up)?"""
        counted = scheduled - start >= plan.warmup
        results.scheduled_in_window += counted
        return counted

    try:
        for _number in itertools.count():
            # The server names each conversation and issues its token (as the web page gets it).
            try:
                async with asyncio.timeout(max(hard_stop - time.perf_counter(), 0.001)):
                    status, created = await connection.post_json("/api/chat/conversations", b"")
                conversation = json.loads(created)
                path = f"/api/chat/conversations/{conversation['conversation_id']}/messages"
                token = f"X-Conversation-Token: {conversation['conversation_token']}\r\n".encode()
            except TimeoutError:
                return
            except (ConnectionLost, ConnectionError, ValueError, KeyError) as exc:
                results.errors[f"new conversation: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.1)
                if time.perf_counter() >= end:
                    return
                continue
            for text in rng.choice(plan.pool):
                now = time.perf_counter()
                if plan.closed_loop:
                    due = now
                if due >= end:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                sent = time.perf_counter()
                counted = counts(due)
                if sent >= end:  # backlogged past the end: this turn waited at least this long, unsent
                    if counted:
                        results.unfinished.append(sent - due)
                    due += period
                    continue
                if due > now:
                    results.dispatch_lag.append(sent - due)
                body = bodies.get(text)
                if body is None:
                    body = bodies[text] = json.dumps({"text": text}, ensure_ascii=False).encode()
                try:
                    async with asyncio.timeout(hard_stop - sent):
                        status, reply = await connection.post_json(path, body, token)
                except TimeoutError:
                    # Still waiting when the run stops: this and the rest of the schedule never finish.
                    if counted:
                        results.unfinished.append(hard_stop - due)
                    while not plan.closed_loop and (due := due + period) < end:
                        if counts(due):
                            results.unfinished.append(hard_stop - due)
                    return
                except (ConnectionLost, ConnectionError, ValueError) as exc:
                    results.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.1)  # a dead server must not make this loop spin
                    due += period
                    continue
                done = time.perf_counter()
                if status != 200:
                    results.errors[f"HTTP {status}"] += 1
                elif b"event: reply" not in reply:
                    results.errors["no reply event"] += 1
                else:
                    results.completed.append((due, done))
                due += period
    finally:
        results.connects += connection.connects
        connection.close()


def process_tree_cpu_seconds(root: int | None) -> float | None:
    """utime + stime of `root` and all its live descendants (uvicorn workers), from /proc."""
    if root is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    parent_of: dict[int, int] = {}
    cpu_of: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        pid = int(entry.name)
        parent_of[pid] = int(fields[1])
        cpu_of[pid] = int(fields[11]) + int(fields[12])
    if root not in cpu_of:
        return None
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parent_of.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(cpu_of[pid] for pid in tree) / ticks


def cpu_snapshot(server_pid: int | None, redis_pid: int | None) -> dict[str, float | None]:
    return {"client": time.process_time(), "server": process_tree_cpu_seconds(server_pid),
            "redis": process_tree_cpu_seconds(redis_pid)}


async def run_load(plan: Plan, server_pid: int | None, redis_pid: int | None) -> Results:
    results = Results()
    start = time.perf_counter() + 0.2  # let every task reach its first sleep before the clock starts
    results.window_start, results.window_end = start + plan.warmup, start + plan.duration

    async def sample() -> None:
        await asyncio.sleep(results.window_start - time.perf_counter())
        results.cpu_before = cpu_snapshot(server_pid, redis_pid)
        await asyncio.sleep(results.window_end - time.perf_counter())
        results.cpu_after = cpu_snapshot(server_pid, redis_pid)

    customers = (converse(plan, i, start, results) for i in range(plan.conversations))
    await asyncio.gather(sample(), *customers)
    return results


# ---------------------------------------------------------------- figures

def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def figures(plan: Plan, results: Results, workers: int) -> dict[str, object]:
    window = results.window_end - results.window_start
    in_window = [(due, done) for due, done in results.completed if due >= results.window_start]
    done_in_window = sum(1 for _, done in results.completed
                         if results.window_start <= done <= results.window_end)
    # Unfinished turns enter with their wait until the run gave up on them: a lower bound.
    latencies = sorted([(done - due) * 1000 for due, done in in_window]
                       + [wait * 1000 for wait in results.unfinished])
    before, after = results.cpu_before, results.cpu_after

    def per_turn_ms(key: str) -> float | None:
        if before.get(key) is None or after.get(key) is None or not done_in_window:
            return None
        return round((after[key] - before[key]) / done_in_window * 1000, 3)  # type: ignore[operator]

    out: dict[str, object] = {
        "mode": "closed loop" if plan.closed_loop else "open loop",
        "conversations": plan.conversations, "workers": workers,
        "offered_turns_per_s": None if plan.closed_loop else round(plan.rate, 1),
        "scheduled_in_window": results.scheduled_in_window,
        "window_s": round(window, 1), "turns_completed_in_window": done_in_window,
        "throughput_turns_per_s": round(done_in_window / window, 1),
        "unfinished": len(results.unfinished),
        "errors": dict(results.errors), "connections_opened": results.connects,
        "server_cpu_ms_per_turn": per_turn_ms("server"), "redis_cpu_ms_per_turn": per_turn_ms("redis"),
        "client_cpu_ms_per_turn": per_turn_ms("client"),
        "client_dispatch_lag_p95_ms": round(percentile(sorted(results.dispatch_lag), 95) * 1000, 2)
        if results.dispatch_lag else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if latencies:
        out.update({f"latency_{name}_ms": round(percentile(latencies, q), 1)
                    for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))})
    throughput = done_in_window / window
    p95 = out.get("latency_p95_ms")
    out["target_met"] = bool(throughput >= TARGET_TURNS_PER_SECOND and p95 is not None
                             and p95 <= TARGET_P95_MS and not results.errors)  # type: ignore[operator]
    return out


def report(out: dict[str, object]) -> None:
    def ms(key: str) -> str:
        value = out.get(key)
        return "n/a" if value is None else f"{value:.2f} ms"

    offered = (f"offered {out['offered_turns_per_s']} turns/s" if out["offered_turns_per_s"] is not None
               else "closed loop (no think time)")
    print(f"mode: {out['mode']}, {out['conversations']} conversations, {offered}, "
          f"{out['workers']} worker(s); window {out['window_s']} s after warm-up")
    print(f"throughput: {out['throughput_turns_per_s']} turns/s ({out['turns_completed_in_window']} turns "
          f"completed in the window; {out['scheduled_in_window']} due in it; "
          f"target >= {TARGET_TURNS_PER_SECOND:.0f})")
    if "latency_p50_ms" in out:
        since = "sending" if out["offered_turns_per_s"] is None else "scheduled time"
        print(f"latency from {since}: p50 {out['latency_p50_ms']:.0f} ms, "
              f"p95 {out['latency_p95_ms']:.0f} ms, p99 {out['latency_p99_ms']:.0f} ms, "
              f"max {out['latency_max_ms']:.0f} ms (target p95 <= {TARGET_P95_MS:.0f} ms; "
              f"{out['unfinished']} unfinished at the end count as lower bounds)")
    errors = out["errors"]
    kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(errors.items()))  # type: ignore[union-attr]
    print(f"errors: {kinds or 'none'}; connections opened: {out['connections_opened']}")
    print(f"CPU per completed turn: server {ms('server_cpu_ms_per_turn')} (serve + workers), "
          f"redis {ms('redis_cpu_ms_per_turn')}, client {ms('client_cpu_ms_per_turn')}; "
          f"client dispatch lag p95 {ms('client_dispatch_lag_p95_ms')}")
    print(f"load average (1 min): {out['load_average_1m']} on {os.cpu_count()} cores")
    print(f"target met: {'yes' if out['target_met'] else 'no'}")


# ---------------------------------------------------------------- the service under test

@dataclass
class Service:
    url: str
    pid: int | None
    redis_pid: int | None


@contextmanager
def start_service(var_dir: str, workers: int, timeout: float = 180) -> Iterator[Service]:
    """`powerdesk serve` (with --workers N and a throw-away Redis when N > 1) on a free loopback port."""
    import httpx

    from tests.servers.ports import free_port, listening_sockets, wait_until
    from tests.servers.redis import redis_server

    with ExitStack() as stack:
        env = {**os.environ, "POWERDESK_VAR_DIR": var_dir, "POWERDESK_RATE_LIMIT_PER_MINUTE": "100000"}
        redis_pid = None
        if workers > 1:
            redis = stack.enter_context(redis_server())
            env["POWERDESK_REDIS_URL"], redis_pid = redis.url, redis.process.pid
        port = free_port()
        log_path = Path(var_dir) / "serve.log"
        log_file = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen([str(POWERDESK), "serve", "--host", "127.0.0.1", "--port", str(port),
                                    "--workers", str(workers)],
                                   env=env, stdout=log_file, stderr=subprocess.STDOUT)

        def stop() -> None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)

        stack.callback(stop)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if process.poll() is not None:
                raise SystemExit(f"powerdesk serve exited:\n{log_path.read_text(errors='replace')[-3000:]}")
            return httpx.get(url + "/healthz", timeout=2).status_code == 200

        wait_until(healthy, timeout, "powerdesk serve")
        # A worker listens only once it has warmed up; load that starts earlier lands on the first.
        wait_until(lambda: workers == 1 or listening_sockets(port) >= workers, timeout, "every worker listening")
        for _ in range(2 * workers):  # new connections, so each worker likely answers one warm-up turn
            created = httpx.post(f"{url}/api/chat/conversations", timeout=timeout).json()
            httpx.post(f"{url}/api/chat/conversations/{created['conversation_id']}/messages?stream=false",
                       json={"text": "你好"}, headers={"X-Conversation-Token": created["conversation_token"]},
                       timeout=timeout)
        yield Service(url, process.pid, redis_pid)


def run(plan: Plan, server_pid: int | None = None, redis_pid: int | None = None) -> Results:
    """Run the load on uvloop when it is installed (less client CPU per turn), else asyncio's loop."""
    try:
        import uvloop
        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run_load(plan, server_pid, redis_pid))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", help="an already running loopback service (server CPU not measured)")
    parser.add_argument("--rate", type=float, default=200, help="offered turns/s in total (open loop)")
    parser.add_argument("--conversations", type=int, default=200, help="customers in conversation at once")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=5, help="first seconds left out of the figures")
    parser.add_argument("--closed-loop", action="store_true",
                        help="no think time: a max-throughput figure, not the target's latency")
    parser.add_argument("--workers", type=int, default=2,
                        help="`powerdesk serve --workers N` (N > 1 starts Redis); ignored with --url")
    parser.add_argument("--customers", type=int, default=2000,
                        help="demo customers to seed; each conversation picks one at random, so with 2,000 "
                             "nearly every conversation is a new customer (no warm caches to lean on)")
    parser.add_argument("--seed", type=int, default=7, help="seed for start jitter and script choice")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not 1 <= args.conversations <= 2000:
        parser.error("--conversations: 1..2000")
    if not 0.1 <= args.rate <= 20000:
        parser.error("--rate: 0.1..20000 turns/s")
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup < args.duration:
        parser.error("--duration: 1..600 s, --warmup: 0 <= warmup < duration")
    if not 1 <= args.workers <= 32:
        parser.error("--workers: 1..32")
    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url: loopback addresses only")

    def plan_for(url: str, pool: list[list[str]]) -> Plan:
        parsed = urlparse(url)
        return Plan(parsed.hostname or "127.0.0.1", parsed.port or 80, args.rate, args.conversations,
                    args.duration, args.warmup, args.closed_loop, args.seed, pool)

    if args.url:
        plan = plan_for(args.url, scripts([("000000000000", "0000", "2026-09")]))
        results = run(plan)
    else:
        var_dir = tempfile.mkdtemp(prefix="powerdesk-chat-load-")
        try:
            customers = prepare_database(var_dir, args.customers)
            with start_service(var_dir, args.workers) as service:
                plan = plan_for(service.url, scripts(customers))
                results = run(plan, service.pid, service.redis_pid)
        finally:
            shutil.rmtree(var_dir, ignore_errors=True)
    out = figures(plan, results, args.workers)
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
