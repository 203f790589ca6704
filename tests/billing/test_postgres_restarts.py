"""PostgreSQL restarted in the middle of a partitioned cycle run and of a readings load: nothing lost.

The cycle: the workers reconnect and finish the run.

A cluster of this module's own (the session's `postgres_server` serves other tests and must not
restart) holds two databases seeded alike; the one-process cycle runs on one, two real
`cycle-worker` processes on the other. A held row stops a worker inside its third chunk, and the
server is restarted under it — `pg_ctl restart -m fast` (sessions ended, a clean shutdown) and
`-m immediate` (every server process killed: crash recovery at start, what a crashed host does).
The workers must ride it out (pool pre-ping, MAX_DATABASE_ERRORS), the cut chunk be retried once its
lease ends, the run complete, and every bill, line, outbox row and work order equal the one-process
run's, with no work-order number twice and no lease left behind.

The readings load: `load-readings` commits a file batch by batch; a restart inside a batch's COPY
fails the command with a clear message, and running it again loads exactly what is missing: the
stored readings and the rejects equal one uninterrupted load's.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade
from billing_core.db.models import Meter, Reading
from billing_core.db.operations_models import CycleRunStatus, PartitionStatus
from billing_core.readings_csv import BATCH_ROWS, load_readings, write_rejects
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


def _wait_for_a_lock_wait(url: str, holder: int, processes: list[subprocess.Popen[str]]) -> None:
    """Until a session of `url` waits on the row session `holder` holds (not on another worker's
    run-row lock); a fresh connection per look: pg_stat_activity is a snapshot within a transaction."""
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            with engine.connect() as probe:
                if probe.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND :holder = ANY(pg_blocking_pids(pid))"), {"holder": holder}):
                    return
            time.sleep(0.05)
        raise AssertionError("nothing reached the held row")
    finally:
        engine.dispose()


WORKERS = [["cycle-worker", "--period", PERIOD, "--lease", "2"]] * 2  # two workers, as a process manager runs them
RUN_CYCLE = [["run-cycle", "--period", PERIOD, "--workers", "2", "--lease", "2", "--no-progress"]]  # it starts them


@pytest.mark.parametrize(("mode", "synchronous_commit", "commands"), [
    ("fast", "on", RUN_CYCLE), ("immediate", "on", WORKERS), ("immediate", "off", WORKERS)])
def test_postgres_restarted_mid_run_the_workers_finish_it_with_the_same_bills(
        cluster: PostgresServer, mode: str, synchronous_commit: str, commands: list[list[str]]) -> None:
    """`on` is PostgreSQL's default; `off` (the test cluster's own setting, some operators' choice for
    speed) lets a crash lose the last commits: claims and whole chunks, bills and "done" together.
    `run-cycle --workers 2` joins the prepared run and must wait the restart out with its workers."""
    # A role setting outranks the server's command line (-c synchronous_commit=off) in new sessions.
    cluster._admin(f"ALTER ROLE postgres SET synchronous_commit = {synchronous_commit}")
    single_url, parts_url = postgres_copies(cluster, TEMPLATE)
    run_single(single_url)
    single = snapshot(single_url)
    prepare_run(parts_url)
    engine = make_engine(parts_url)
    blocker = engine.connect()
    blocker.execute(HOLD_BILL_OF_CUSTOMER_12, {"p": PERIOD})  # uncommitted: customer 12's chunk waits on it
    holder = blocker.scalar(text("SELECT pg_backend_pid()"))
    env = {**os.environ, "POWERDESK_DATABASE_URL": parts_url}
    workers = [subprocess.Popen([sys.executable, "-m", "billing_core.cli.billing", *command], env=env, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for command in commands]
    try:
        _wait_for_a_lock_wait(parts_url, holder, workers)
        cluster.restart(mode, down_seconds=1.5)  # ends the blocker's session too: the held row is gone
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
    assert [w.returncode for w in workers] == [0] * len(commands), logs  # no worker gave up
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


def test_a_worker_started_while_postgres_is_down_waits_for_it_and_finishes_the_run(cluster: PostgresServer) -> None:
    """A process manager starting workers at boot before PostgreSQL is up, or a worker started in
    the seconds of a restart: it waits (as its chunks do), then does the run: exit 0, the same bills."""
    cluster._admin("ALTER ROLE postgres SET synchronous_commit = on")
    single_url, parts_url = postgres_copies(cluster, TEMPLATE)
    run_single(single_url)
    single = snapshot(single_url)
    prepare_run(parts_url)
    cluster.shut_down("fast")
    started = False
    worker = subprocess.Popen([sys.executable, "-m", "billing_core.cli.billing", *WORKERS[0]],
                              env={**os.environ, "POWERDESK_DATABASE_URL": parts_url}, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stderr is not None
        first = worker.stderr.readline()  # blocks until it has tried, and failed, to reach the server
        assert "数据库暂不可用" in first and worker.poll() is None, first
        cluster.start()
        started = True
        out, err = worker.communicate(timeout=90)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        if not started:  # the module's other tests need the cluster up
            cluster.start()
    assert worker.returncode == 0, first + err
    assert "Traceback" not in err and "发行" in out, (out, err)
    assert_same_as_single(single, snapshot(parts_url))
    for url in (single_url, parts_url):
        cluster.drop_database(url.rsplit("/", 1)[1])


READINGS_FROM = date(2026, 8, 1)  # after the seed's readings (30 June – 31 July)


def write_readings_file(path: Path, asset_nos: list[str]) -> int:
    """A file of a little more than one batch, day by day, with a bad row in each batch; its rows."""
    days = BATCH_ROWS // len(asset_nos) + 20
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["asset_no", "date", "register", "value"])
        for offset in range(days):
            day = (READINGS_FROM + timedelta(days=offset)).isoformat()
            for number, asset_no in enumerate(asset_nos):
                writer.writerow([asset_no, day, "active_total", f"{10_000 + offset * 10 + number}.125"])
            if offset == 3:
                writer.writerow(["M-UNKNOWN", day, "active_total", "1"])  # batch 1: an unknown meter
        writer.writerow([asset_nos[0], day, "active_total", "1.000"])  # batch 2: backwards (and a duplicate)
    return days * len(asset_nos) + 2


def stored_readings(url: str) -> list[tuple[str, date, str, str, str]]:
    engine = make_engine(url)
    with Session(engine) as session:
        rows = [(asset, day, str(register), str(value), str(source)) for asset, day, register, value, source in
                session.execute(select(Meter.asset_no, Reading.read_date, Reading.register, Reading.value,
                                       Reading.source).join(Meter, Meter.id == Reading.meter_id)
                                .order_by(Meter.asset_no, Reading.register, Reading.read_date))]
    engine.dispose()
    return rows


def load_command(url: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "billing_core.cli.billing", "load-readings", str(path)],
                            env={**os.environ, "POWERDESK_DATABASE_URL": url}, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_postgres_restarted_mid_load_a_rerun_completes_the_file_with_nothing_doubled(
        cluster: PostgresServer, tmp_path: Path) -> None:
    """A crash (`-m immediate`; `-m fast` ends the session the same way for the loader)."""
    cluster._admin("ALTER ROLE postgres SET synchronous_commit = on")
    clean_url, cut_url = postgres_copies(cluster, TEMPLATE)
    engine = make_engine(cut_url)
    with Session(engine) as session:
        meters = list(session.execute(select(Meter.asset_no, Meter.id).order_by(Meter.asset_no)))
    path = tmp_path / "readings.csv"
    rows = write_readings_file(path, [asset for asset, _ in meters])
    assert rows > BATCH_ROWS  # two batches: the first commits before the restart
    clean_engine = make_engine(clean_url)
    with Session(clean_engine) as session:  # the uninterrupted load, for comparison
        clean = load_readings(session, path)
    clean_engine.dispose()
    write_rejects(tmp_path / "clean.rejects.csv", clean)
    assert clean.loaded == rows - 2 and len(clean.rejects) == 2

    last_day = READINGS_FROM + timedelta(days=rows // len(meters) - 1)
    blocker = engine.connect()
    # The file's last good reading, held uncommitted: the second batch's COPY waits on it.
    blocker.execute(text("INSERT INTO readings (meter_id, read_date, register, value, source) "
                         "VALUES (:m, :d, 'active_total', 0, 'daily')"), {"m": meters[-1][1], "d": last_day})
    holder = blocker.scalar(text("SELECT pg_backend_pid()"))
    loader = load_command(cut_url, path)
    try:
        _wait_for_a_lock_wait(cut_url, holder, [loader])
        cluster.restart("immediate")
        blocker.invalidate()
        out, err = loader.communicate(timeout=60)
    finally:
        if loader.poll() is None:
            loader.kill()
            loader.wait(10)
        blocker.close()
        engine.dispose()
    assert loader.returncode == 1, (out, err)
    # A clear message that says what to do (not "run db upgrade", not a stack trace).
    assert "数据库连接中断" in err and "重新运行同一文件" in err and "Traceback" not in err, err
    half = stored_readings(cut_url)
    assert 0 < len(half) - len(stored_readings(cluster.url(TEMPLATE))) < rows - 2  # the first batch is in

    rerun = load_command(cut_url, path)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 3, (out, err)  # loaded, with the same two rows refused
    assert f"已入库跳过 {BATCH_ROWS - 1} 行" in out, out  # the committed batch, recognised: not doubled
    assert stored_readings(cut_url) == stored_readings(clean_url)
    assert (tmp_path / "readings.csv.rejects.csv").read_text() == (tmp_path / "clean.rejects.csv").read_text()
    for url in (clean_url, cut_url):
        cluster.drop_database(url.rsplit("/", 1)[1])
