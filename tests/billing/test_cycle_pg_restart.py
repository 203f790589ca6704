"""PostgreSQL restarted in the middle of a partitioned cycle run: the workers reconnect and finish it.

A cluster of this module's own (the session's `postgres_server` serves other tests and must not
restart) holds two databases seeded alike; the one-process cycle runs on one, two real
`cycle-worker` processes on the other. A held row stops a worker inside its third chunk, and the
server is restarted under it — `pg_ctl restart -m fast` (sessions ended, a clean shutdown) and
`-m immediate` (every server process killed: crash recovery at start, what a crashed host does).
The workers must ride it out (pool pre-ping, MAX_DATABASE_ERRORS), the cut chunk be retried once its
lease ends, the run complete, and every bill, line, outbox row and work order equal the one-process
run's, with no work-order number twice and no lease left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade
from billing_core.db.operations_models import CycleRunStatus, PartitionStatus
from tests.billing.test_cycle_partitioned import (
    PERIOD,
    REPO,
    assert_same_as_single,
    partitions,
    postgres_copies,
    prepare_run,
    run_single,
    seed,
    snapshot,
)
from tests.servers.postgres import PostgresServer, postgres_server

pytestmark = pytest.mark.postgres

TEMPLATE = "cycle_restart_template"
HOLD_BILL_OF_CUSTOMER_12 = text(
    "INSERT INTO bills (customer_id, period, period_start, period_end, total_kwh, amount, status, "
    "tariff_versions, notes, computed_at) VALUES (12, :p, '2026-07-01', '2026-07-31', 0, 0, 'computed', "
    "'[]', '[]', now())")


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresServer]:
    """A cluster this module may restart, with a migrated, seeded template database."""
    with postgres_server() as server:
        url = server.create_database(TEMPLATE)
        upgrade(url)
        seed(url)
        yield server


def _wait_for_a_worker_inside_a_chunk(url: str, workers: list[subprocess.Popen[str]]) -> None:
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), [w.stderr.read() for w in workers if w.stderr]
            with engine.connect() as probe:
                if probe.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND wait_event_type = 'Lock'")):
                    return
            time.sleep(0.05)
        raise AssertionError("no worker reached the held customer")
    finally:
        engine.dispose()


@pytest.mark.parametrize(("mode", "synchronous_commit"), [("fast", "on"), ("immediate", "on"), ("immediate", "off")])
def test_postgres_restarted_mid_run_the_workers_finish_it_with_the_same_bills(
        cluster: PostgresServer, mode: str, synchronous_commit: str) -> None:
    """`on` is PostgreSQL's default; `off` (the test cluster's own setting, some operators' choice for
    speed) lets a crash lose the last commits: claims and whole chunks, bills and "done" together."""
    # A role setting outranks the server's command line (-c synchronous_commit=off) in new sessions.
    cluster._admin(f"ALTER ROLE postgres SET synchronous_commit = {synchronous_commit}")
    single_url, parts_url = postgres_copies(cluster, TEMPLATE)
    run_single(single_url)
    single = snapshot(single_url)
    prepare_run(parts_url)
    engine = make_engine(parts_url)
    blocker = engine.connect()
    blocker.execute(HOLD_BILL_OF_CUSTOMER_12, {"p": PERIOD})  # uncommitted: customer 12's chunk waits on it
    env = {**os.environ, "POWERDESK_DATABASE_URL": parts_url}
    workers = [subprocess.Popen([sys.executable, "-m", "billing_core.cli.billing", "cycle-worker", "--period",
                                 PERIOD, "--lease", "2"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        _wait_for_a_worker_inside_a_chunk(parts_url, workers)
        cluster.restart(mode)  # ends the blocker's session too: the held row is gone
        blocker.invalidate()
        outputs = [w.communicate(timeout=90) for w in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
        blocker.close()
        engine.dispose()
    logs = "\n".join(err for _out, err in outputs)
    assert [w.returncode for w in workers] == [0, 0], logs  # no worker gave up
    assert "数据库错误" in logs or "失败" in logs, logs  # the restart did hit them
    after = partitions(parts_url)
    assert all(p.status is PartitionStatus.DONE for p in after), [(p.status, p.error) for p in after]
    assert all(p.lease_until is None for p in after)  # no lease leaked
    if synchronous_commit == "on":  # its claim committed before the restart: the chunk cut by it ran again
        assert after[2].attempts >= 2
    parts = snapshot(parts_url)
    assert parts["run"][0] is CycleRunStatus.COMPLETED
    assert_same_as_single(single, parts)  # nothing lost, nothing doubled, numbers unique
    assert any("发行" in out for out, _err in outputs)  # the worker that completed the run printed its summary
    for url in (single_url, parts_url):
        cluster.drop_database(url.rsplit("/", 1)[1])
