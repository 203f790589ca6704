"""CPU per `allow()` of the per-sender rate windows (channels.limits), in process and on Redis.

Every chat turn makes one `allow()` call, so its cost is paid on every turn: the Redis window is
one round trip to a real redis-server (tests/servers/redis.py), whose own CPU is not counted.
Prints the median and best of the rounds, in µs of this process's CPU (all its threads) per
call. `--compare-memory` also runs the `limits` package's MemoryStorage moving window at a
steady 200 requests/s, where its expiry timer (a rescan of every sender every 10 ms) shows: the
reason the in-process window is not on `limits`.

    .venv/bin/python benchmarks/bench_rate_limit.py [--calls 20000] [--compare-memory]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.limits import InProcessRateLimiter, RateLimiter, RedisRateLimiter  # noqa: E402
from tests.servers.redis import redis_server  # noqa: E402

PER_MINUTE = 10**9  # never refuse: every call does the full count


def cpu_per_call(limiter: RateLimiter, calls: int, senders: int, rounds: int) -> list[float]:
    """µs of process CPU per allow(), one figure per round, cycling over `senders` senders."""
    names = [f"web:bench{i}" for i in range(senders)]
    for name in names:
        limiter.allow(name)  # connect, load scripts, create every window
    figures = []
    for _ in range(rounds):
        start = time.process_time()
        for i in range(calls):
            limiter.allow(names[i % senders])
        figures.append((time.process_time() - start) / calls * 1e6)
    return figures


def paced_cpu_per_call(limiter: RateLimiter, senders: int, rate: float, seconds: float) -> float:
    """µs of process CPU per allow() at a steady `rate`, with `senders` windows alive."""
    names = [f"web:paced{i}" for i in range(senders)]
    for name in names:
        limiter.allow(name)
    calls = 0
    start_cpu, start = time.process_time(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        limiter.allow(names[calls % senders])
        calls += 1
        time.sleep(1 / rate)
    return (time.process_time() - start_cpu) / calls * 1e6


def report(name: str, figures: list[float]) -> None:
    print(f"{name:52s} median {statistics.median(figures):6.1f} µs  best {min(figures):6.1f} µs")


def limits_memory_moving(per_minute: int) -> RateLimiter:
    from limits import RateLimitItemPerMinute
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    window, strategy = RateLimitItemPerMinute(per_minute), MovingWindowRateLimiter(MemoryStorage())

    class Limiter:
        def allow(self, sender: str) -> bool:
            return strategy.hit(window, sender)

    return Limiter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--senders", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare-memory", action="store_true")
    options = parser.parse_args()
    report("in process (InProcessRateLimiter)",
           cpu_per_call(InProcessRateLimiter(PER_MINUTE), options.calls * 5, options.senders, options.rounds))
    with redis_server() as server:
        report("Redis (RedisRateLimiter), one round trip",
               cpu_per_call(RedisRateLimiter(server.url, PER_MINUTE), options.calls, options.senders,
                            options.rounds))
    if options.compare_memory:
        paced: list[tuple[str, Callable[[], RateLimiter]]] = [
            ("in process (InProcessRateLimiter)", lambda: InProcessRateLimiter(120)),
            ("limits MemoryStorage, moving window", lambda: limits_memory_moving(120)),
        ]
        for name, build in paced:
            figure = paced_cpu_per_call(build(), options.senders, rate=200, seconds=3)
            print(f"{name + ' at 200/s':52s} {figure:8.1f} µs (incl. sleep-loop overhead)")


if __name__ == "__main__":
    main()
