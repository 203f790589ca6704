"""The partitioned billing cycle: the same bills as one `run_cycle`, a killed worker's partition taken over.

Each comparison seeds two databases the same way, runs the one-process cycle on one and the
partitioned cycle on the other, and compares every bill, line, outbox row and review work order
row by row (ids and timestamps aside: the partitioned run inserts in another order).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, aliased

from billing_core.bill_types import Usage
from billing_core.consumption import Consumption
from billing_core.cycle.partitioned import prepare, run_with_workers, status, work
from billing_core.cycle.run import default_usage_loader, run_cycle
from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade
from billing_core.db.models import Bill, BillLine, Customer, WorkOrder
from billing_core.db.operations_models import CyclePartition, CycleRun, CycleRunStatus, OutboxNotification, PartitionStatus
from billing_core.errors import BillingError
from tests.billing.conftest import BACKENDS
from tests.billing.ops_factories import add_bill, add_customer, add_daily_readings, add_meter
from tests.servers.postgres import PostgresServer

PERIOD = "2026-07"
ISSUE = date(2026, 8, 2)
CUSTOMERS = 36
REPO = Path(__file__).resolve().parents[2]


def seed(url: str) -> None:
    """Households of every outcome: issued, held (use tripled), blocked (meter backwards, no meter)."""
    engine = make_engine(url)
    with Session(engine) as session:
        for n in range(1, CUSTOMERS + 1):
            customer = add_customer(session, n, openid=f"wx-{n}" if n % 2 else None)
            if n % 9 == 0:
                continue  # no meter, no readings
            per_day = str(Decimal(n % 7 + 8) + Decimal("0.125"))
            overrides = {date(2026, 7, 20): "100"} if n % 9 == 4 else None
            add_daily_readings(session, add_meter(session, customer), date(2026, 6, 30), date(2026, 7, 31),
                               str(1000 + n), per_day, overrides=overrides)
            june_kwh = "100" if n % 9 == 7 else str((Decimal(per_day) * 30).quantize(Decimal("1")))
            add_bill(session, customer, "2026-06", june_kwh, "150.00", bill_no=f"GD202606{customer.account_no}")
        session.commit()
    engine.dispose()


def snapshot(url: str) -> dict[str, Any]:
    """Everything the cycle wrote, keyed by account, without ids and write times."""
    engine = make_engine(url)
    with Session(engine) as session:
        bills = session.execute(
            select(Customer.account_no, Bill.status, Bill.amount, Bill.total_kwh, Bill.bill_no, Bill.due_date,
                   Bill.issued_at, Bill.period_start, Bill.period_end, Bill.tariff_versions, Bill.notes)
            .join(Customer, Customer.id == Bill.customer_id).where(Bill.period == PERIOD)
            .order_by(Customer.account_no)).all()
        lines = session.execute(
            select(Customer.account_no, BillLine.position, BillLine.code, BillLine.quantity, BillLine.unit_price,
                   BillLine.amount, BillLine.explanation)
            .join(Bill, Bill.id == BillLine.bill_id).join(Customer, Customer.id == Bill.customer_id)
            .where(Bill.period == PERIOD).order_by(Customer.account_no, BillLine.position)).all()
        outbox = session.execute(
            select(OutboxNotification.account_no, Bill.bill_no, OutboxNotification.channel, OutboxNotification.kind,
                   OutboxNotification.recipient, OutboxNotification.template, OutboxNotification.body,
                   OutboxNotification.payload, OutboxNotification.status, OutboxNotification.dedupe_key, Bill.id)
            .join(Bill, Bill.id == OutboxNotification.bill_id)
            .order_by(OutboxNotification.account_no, OutboxNotification.channel)).all()
        # Each dedupe key names its own bill (whose id differs between the two databases).
        outbox = [(*row[:-2], row[-2] == f"bill_issued:{row[-1]}:{row[2].value}") for row in outbox]
        billed = aliased(Customer)
        orders = session.execute(
            select(WorkOrder.account_no, WorkOrder.kind, WorkOrder.title, WorkOrder.description, WorkOrder.payload,
                   WorkOrder.period, WorkOrder.channel, WorkOrder.status, billed.account_no)
            .outerjoin(Bill, Bill.id == WorkOrder.bill_id).outerjoin(billed, billed.id == Bill.customer_id)
            .order_by(WorkOrder.account_no)).all()
        numbers = list(session.scalars(select(WorkOrder.no).order_by(WorkOrder.no)))
        run = session.scalar(select(CycleRun).where(CycleRun.period == PERIOD))
        counters = (run.status, run.customers, run.bills_computed, run.bills_issued, run.bills_held, run.blocked,
                    run.review_work_orders, run.skipped_existing)
        total = session.scalar(select(func.sum(Bill.amount)).where(Bill.period == PERIOD))
    engine.dispose()
    return {"bills": bills, "lines": lines, "outbox": outbox, "orders": orders, "numbers": numbers,
            "run": counters, "total": total}


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, seeded SQLite file; tests get copies (migrating and seeding is most of a test)."""
    path = tmp_path_factory.mktemp("cycle-template") / "seeded.db"
    upgrade(f"sqlite:///{path}")
    seed(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def postgres_template(postgres_server: PostgresServer) -> Iterator[str]:
    """The same on PostgreSQL: a template database that CREATE DATABASE … TEMPLATE copies."""
    url = postgres_server.create_database(f"cycle_template_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    seed(url)
    yield url.rsplit("/", 1)[1]
    postgres_server.drop_database(url.rsplit("/", 1)[1])


def postgres_copies(server: PostgresServer, template: str, count: int = 2) -> list[str]:
    names = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    for name in names:
        server._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return [server.url(name) for name in names]


@pytest.fixture(params=BACKENDS)
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two migrated databases seeded alike on one backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        paths = [tmp_path / name for name in ("single.db", "parts.db")]
        for path in paths:
            shutil.copyfile(template, path)
        yield f"sqlite:///{paths[0]}", f"sqlite:///{paths[1]}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    urls = postgres_copies(server, request.getfixturevalue("postgres_template"))
    yield urls[0], urls[1]
    for url in urls:
        server.drop_database(url.rsplit("/", 1)[1])


def run_single(url: str) -> None:
    engine = make_engine(url)
    with Session(engine) as session:
        run_cycle(session, PERIOD, issue_date=ISSUE)
        session.commit()
    engine.dispose()


def prepare_run(url: str, partition_size: int = 5) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        prepared = prepare(session, PERIOD, issue_date=ISSUE, partition_size=partition_size)
        session.commit()
    engine.dispose()
    return prepared.partitions


def partitions(url: str) -> list[CyclePartition]:
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        rows = list(session.scalars(select(CyclePartition).order_by(CyclePartition.first_customer_id)))
    engine.dispose()
    return rows


def assert_same_as_single(single: dict[str, Any], parts: dict[str, Any]) -> None:
    for key in ("bills", "lines", "outbox", "orders", "run", "total"):
        assert parts[key] == single[key], key
    assert len(parts["numbers"]) == len(set(parts["numbers"])) == len(single["numbers"])  # no duplicates
    assert all(row[-1] for row in parts["outbox"])  # each dedupe key names its own bill


def test_partitions_give_the_same_bills_as_one_run(two_databases: tuple[str, str]) -> None:
    single_url, parts_url = two_databases
    run_single(single_url)
    assert prepare_run(parts_url) == 8  # 36 customers in partitions of 5
    stats = work(PERIOD, url=parts_url, poll=0.05)
    assert stats.partitions == 8
    single, parts = snapshot(single_url), snapshot(parts_url)
    statuses = {row[1].value for row in single["bills"]}
    assert statuses == {"issued", "held"} and single["run"][5] == 8  # 4 meters backwards + 4 without a meter
    assert_same_as_single(single, parts)
    assert partitions(parts_url)[0].attempts == 1
    engine = make_engine(parts_url)
    with Session(engine) as session:
        assert prepare(session, PERIOD).already_done  # a completed period is not run again
        with pytest.raises(BillingError):
            prepare(session, PERIOD, partition_size=0)
    engine.dispose()


def test_a_failing_partition_is_retried_then_set_aside_and_a_rerun_finishes_it(
        two_databases: tuple[str, str]) -> None:
    single_url, parts_url = two_databases
    run_single(single_url)
    prepare_run(parts_url, partition_size=10)
    calls: list[int] = []

    def broken(session: Session, ids: Any, start: date, end: date) -> dict[int, Consumption | Usage]:
        if 13 in ids:
            calls.append(13)
            raise ValueError("抄表系统返回了损坏的数据")
        return default_usage_loader(session, ids, start, end)

    work(PERIOD, url=parts_url, poll=0.05, max_attempts=2, usage_loader=broken)
    rows = partitions(parts_url)
    assert [r.status for r in rows] == [PartitionStatus.DONE, PartitionStatus.FAILED, PartitionStatus.DONE,
                                        PartitionStatus.DONE]
    assert len(calls) == 2 and rows[1].attempts == 2 and "损坏" in (rows[1].error or "")
    engine = make_engine(parts_url)
    with Session(engine) as session:
        state = status(session, PERIOD)
        assert not state.finished and "搁置" in state.summary()
        assert session.scalar(select(func.count()).select_from(Bill).join(Customer).where(
            Bill.period == PERIOD, Customer.id.between(rows[1].first_customer_id, rows[1].last_customer_id))) == 0
        with pytest.raises(BillingError, match="分区运行"):
            run_cycle(session, PERIOD, issue_date=ISSUE)  # the one-process cycle does not run over it
        session.rollback()
        assert prepare(session, PERIOD).retried == 1
        session.commit()
    engine.dispose()
    work(PERIOD, url=parts_url, poll=0.05)
    assert_same_as_single(snapshot(single_url), snapshot(parts_url))


@pytest.mark.postgres
def test_a_worker_killed_mid_chunk_loses_and_duplicates_nothing(postgres_server: PostgresServer,
                                                                 postgres_template: str) -> None:
    """A real worker process is killed while writing a chunk; two new workers finish the run."""
    urls = postgres_copies(postgres_server, postgres_template)
    single_url, parts_url = urls
    run_single(single_url)
    prepare_run(parts_url)
    engine = make_engine(parts_url)
    blocker = engine.connect()
    # Hold (uncommitted) a bill of customer 12 (one that gets a bill), in the third partition: the worker's COPY of that
    # chunk waits on it, so the kill lands inside the chunk's transaction, deterministically.
    blocker.execute(text(
        "INSERT INTO bills (customer_id, period, period_start, period_end, total_kwh, amount, status, "
        "tariff_versions, notes, computed_at) VALUES (12, :p, '2026-07-01', '2026-07-31', 0, 0, 'computed', "
        "'[]', '[]', now())"), {"p": PERIOD})
    env = {**os.environ, "POWERDESK_DATABASE_URL": parts_url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "billing_core.cli.billing", "cycle-worker", "--period", PERIOD, "--lease", "2"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        waiting = 0
        while time.monotonic() < deadline and not waiting:
            time.sleep(0.1)
            with engine.connect() as probe:
                waiting = probe.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"))
        assert waiting, f"the worker never reached the held customer: {worker.poll()} {worker.stderr.read() if worker.poll() is not None else ''}"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    blocker.rollback()
    blocker.close()
    before = partitions(parts_url)
    assert [p.status for p in before[:3]] == [PartitionStatus.DONE, PartitionStatus.DONE, PartitionStatus.RUNNING]
    assert all(p.status is PartitionStatus.PENDING for p in before[3:])
    dead = before[2].claimed_by
    with engine.connect() as probe:  # the dead worker's chunk left nothing behind
        assert probe.scalar(text("SELECT count(*) FROM bills WHERE period = :p AND customer_id BETWEEN 11 AND 15"),
                            {"p": PERIOD}) == 0

    state = run_with_workers(PERIOD, 2, url=parts_url, lease=timedelta(seconds=2))
    engine.dispose()
    assert state.finished, state.summary()
    after = partitions(parts_url)
    assert all(p.status is PartitionStatus.DONE for p in after)
    assert after[2].claimed_by != dead and after[2].attempts == 2
    single, parts = snapshot(single_url), snapshot(parts_url)
    assert parts["run"][0] is CycleRunStatus.COMPLETED
    assert_same_as_single(single, parts)
    for url in urls:
        postgres_server.drop_database(url.rsplit("/", 1)[1])


def test_the_commands_refuse_what_cannot_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              sqlite_template: Path) -> None:
    from typer.testing import CliRunner

    from billing_core.cli.billing import app

    shutil.copyfile(sqlite_template, tmp_path / "cli.db")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("POWERDESK_DATABASE_URL", url)
    runner = CliRunner()
    many = runner.invoke(app, ["run-cycle", "--period", PERIOD, "--workers", "2"])
    assert many.exit_code == 2 and "SQLite 只允许一个写入者" in many.stderr
    early = runner.invoke(app, ["cycle-worker", "--period", PERIOD])
    assert early.exit_code == 2 and "--prepare-only" in early.stderr
    prepared = runner.invoke(app, ["run-cycle", "--period", PERIOD, "--issue-date", "2026-08-02", "--prepare-only",
                                   "--partition-size", "20"])
    assert prepared.exit_code == 0 and "2 个分区（新登记）" in prepared.stderr
    assert "cycle-worker --period 2026-07" in prepared.stdout
    done = runner.invoke(app, ["cycle-worker", "--period", PERIOD])
    assert done.exit_code == 0 and "发行" in done.stdout, done.output
    again = runner.invoke(app, ["run-cycle", "--period", PERIOD, "--workers", "1"])
    assert again.exit_code == 0 and "本次未做任何更改" in again.stdout


@pytest.mark.postgres
def test_a_worker_whose_connection_is_cut_mid_chunk_retries_it(postgres_server: PostgresServer,
                                                               postgres_template: str) -> None:
    """The server ends the worker's session inside a chunk (as a failover or restart would): the
    chunk is set back with the reason and the same worker finishes it on a new connection."""
    import threading

    urls = postgres_copies(postgres_server, postgres_template)
    single_url, parts_url = urls
    run_single(single_url)
    prepare_run(parts_url)
    engine = make_engine(parts_url)
    blocker = engine.connect()
    blocker.execute(text(
        "INSERT INTO bills (customer_id, period, period_start, period_end, total_kwh, amount, status, "
        "tariff_versions, notes, computed_at) VALUES (12, :p, '2026-07-01', '2026-07-31', 0, 0, 'computed', "
        "'[]', '[]', now())"), {"p": PERIOD})
    messages: list[str] = []
    worker = threading.Thread(target=work, args=(PERIOD,),
                              kwargs={"url": parts_url, "poll": 0.05, "log": messages.append})
    worker.start()
    try:
        deadline, victim = time.monotonic() + 30, None
        while time.monotonic() < deadline and victim is None:
            time.sleep(0.05)
            with engine.connect() as probe:
                victim = probe.scalar(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                           "AND wait_event_type = 'Lock'"))
        assert victim is not None, messages
        with engine.connect() as probe:
            assert probe.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
    finally:
        blocker.rollback()
        blocker.close()
        worker.join(60)
    engine.dispose()
    assert not worker.is_alive()
    third = partitions(parts_url)[2]
    assert third.status is PartitionStatus.DONE and third.attempts == 2, messages
    assert any("分区" in m and "失败" in m for m in messages), messages
    assert_same_as_single(snapshot(single_url), snapshot(parts_url))
    for url in urls:
        postgres_server.drop_database(url.rsplit("/", 1)[1])


def test_a_customer_whose_tariff_is_missing_is_set_aside_and_the_chunk_finishes(
        two_databases: tuple[str, str]) -> None:
    single_url, parts_url = two_databases
    for url in two_databases:
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE customers SET region = 'atlantis' WHERE id = 2"))
        engine.dispose()
    run_single(single_url)
    prepare_run(parts_url)
    work(PERIOD, url=parts_url, poll=0.05)
    assert all(p.status is PartitionStatus.DONE for p in partitions(parts_url))
    single, parts = snapshot(single_url), snapshot(parts_url)
    assert_same_as_single(single, parts)
    review = [row for row in parts["orders"] if row[0] == "440100000002"]
    assert len(review) == 1 and review[0][4]["rules"] == ["compute_failed"] and review[0][8] is None
    assert "440100000002" not in {row[0] for row in parts["bills"]}
