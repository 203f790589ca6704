"""`powerdesk serve --workers N`: N worker processes, each listening on its own SO_REUSEPORT socket.

uvicorn's own `--workers` shares one listening socket, and whichever worker wakes first accepts a
whole burst of connections. Chat connections are long-lived (keep-alive), so they piled onto one
worker: 129 against 71 of 200 conversations in `benchmarks/chat_load.py`, and the busier worker's
queue set the p95. With a socket per worker and SO_REUSEPORT, Linux spreads new connections over
the workers by a hash of their addresses.

The supervisor restarts a worker that dies after it has started, gives up (exit 1) when one dies
during start-up (a port in use, a broken configuration), and stops them all on SIGINT / SIGTERM.
A worker whose supervisor is killed outright stops by itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger("powerdesk.channels")

STARTUP_SECONDS = 60.0  # a worker that dies sooner failed to start (warm-up takes ~20 s): don't loop
SUPERVISE_EVERY_SECONDS = 0.5


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket that shares its port with the other workers' (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM ourselves (uvicorn shuts down gracefully) once the supervisor is gone."""
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(host: str, port: int, log_level: str) -> None:
    import uvicorn

    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), daemon=True).start()
    sock = listening_socket(host, port)
    from channels.settings import shutdown_grace_seconds

    config = uvicorn.Config("channels.serve_cli:worker_app", factory=True, log_config=None, log_level=log_level,
                            access_log=False, timeout_graceful_shutdown=shutdown_grace_seconds())
    uvicorn.Server(config).run(sockets=[sock])


def _forget_metrics_of(pid: int | None) -> None:
    """A dead worker's live gauges leave the scrape; its counters stay (they are totals so far)."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def run_workers(count: int, host: str, port: int, log_level: str) -> int:
    """Run `count` workers until SIGINT / SIGTERM; the exit code for `powerdesk serve`."""
    try:  # fail here, with a clear message, rather than in every worker
        listening_socket(host, port).close()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing forked mid-state
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_worker_main, args=(host, port, log_level), name="powerdesk-worker")
        process.start()
        return process, time.monotonic()

    workers = [start() for _ in range(count)]
    failed = False
    while not stopping.wait(SUPERVISE_EVERY_SECONDS):
        for index, (process, started) in enumerate(workers):
            if process.is_alive():
                continue
            if time.monotonic() - started < STARTUP_SECONDS:
                log.error("worker %s exited during start-up (code %s)", process.pid, process.exitcode)
                failed = True
                stopping.set()
                break
            log.warning("worker %s exited (code %s); starting another", process.pid, process.exitcode)
            _forget_metrics_of(process.pid)
            workers[index] = start()
    for process, _ in workers:
        if process.is_alive():
            process.terminate()
    from channels.settings import shutdown_grace_seconds

    grace = shutdown_grace_seconds() + 10  # each worker drains its in-flight requests first
    for process, _ in workers:
        process.join(timeout=grace)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    return 1 if failed else 0
