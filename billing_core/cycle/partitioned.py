"""The billing cycle over many workers: a period's customers in partitions claimed from PostgreSQL.

Why PostgreSQL and not a job queue (Celery, RQ on Redis): the partitions must be claimed,
processed and marked done consistently with the bills they write. With the claim in the same
database, "this chunk is done" commits in the same transaction as its bills, outbox rows and
work orders — no message can be acknowledged for work that was rolled back, or lost for work
that committed — and operators need no broker beyond the database they already run.

`prepare` records the run (`cycle_runs`, status running) and cuts the customers into id ranges
(`cycle_partitions`). Each worker (`powerdesk billing cycle-worker`, on any host that reaches the
database) loops: claim a pending partition, or one whose lease ran out, with
`SELECT … FOR UPDATE SKIP LOCKED` and commit the claim (status running, a lease); then, in one
transaction, lock the partition row again, check the claim is still its own, run the same
`_run_chunk` as the one-process `run_cycle` (read → compute → verify → issue), store the chunk's
counts on the row, mark it done and commit. A worker killed mid-chunk loses nothing (its
transaction rolls back) and duplicates nothing (the partition is still `running` under its
lease; when the lease ends another worker takes it, and the bills' unique key plus the claim
check at the start stop two writers of one customer). A chunk that raises is retried, and after
`max_attempts` set aside as `failed` with the reason; a later run of the period retries it.

Work-order numbers are consecutive per day across the whole run, so the chunk's tail (number,
insert work orders and outbox rows, commit) takes the `cycle_runs` row lock: workers wait for one
another only there. Numbers therefore follow commit order, not customer order — the only
difference from a one-process run; bills, bill numbers, amounts, lines and notifications are the
same.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import FrameType
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from billing_core.cycle.run import (
    CycleResult,
    UsageLoader,
    _run_chunk,
    default_usage_loader,
    previous_period,
)
from billing_core.db.bulk import bulk_insert
from billing_core.db.engine import make_engine
from billing_core.db.models import Bill, BillStatus, Customer
from billing_core.db.operations_models import CyclePartition, CycleRun, CycleRunStatus, PartitionStatus
from billing_core.errors import BillingError
from billing_core.money import ZERO
from billing_core.operations.policy import OperationsPolicy, load_policy
from billing_core.operations.work_orders import WorkOrderNumbers
from billing_core.periods import period_bounds

PARTITION_SIZE = 2000  # customers per partition: about a second of work, the unit of retry
LEASE = timedelta(seconds=120)  # a claim not finished by then may be taken over
MAX_ATTEMPTS = 3
MAX_DATABASE_ERRORS = 120  # consecutive failures to reach the database before a worker gives up
DATABASE_RETRY_SECONDS = 1.0  # between those tries: two minutes for a restart or a failover
# A worker's host that vanishes leaves its transaction open on the server; this ends it (and
# frees the partition's rows) after 5 minutes idle inside a transaction. A live chunk never idles
# that long between statements.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 300_000
_COUNTERS = ("customers", "skipped_existing", "bills_computed", "bills_held", "bills_issued", "blocked",
             "review_work_orders", "notifications", "verified_existing", "late_fee_bills")


@dataclass
class Prepared:
    period: str
    already_done: bool = False
    partitions: int = 0
    created: bool = False  # this call created the run (else it joined or resumed one)
    retried: int = 0  # failed partitions of an earlier run put back to pending


@dataclass
class RunStatus:
    """Where a partitioned run stands: the totals of its done partitions and what is left."""

    result: CycleResult
    status: CycleRunStatus | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[int, int, str]] = field(default_factory=list)  # (first id, last id, error)

    @property
    def finished(self) -> bool:
        return self.status is CycleRunStatus.COMPLETED

    @property
    def unfinished(self) -> int:
        return self.by_status.get(PartitionStatus.PENDING, 0) + self.by_status.get(PartitionStatus.RUNNING, 0)

    def summary(self) -> str:
        """The run's summary in Chinese, with the partitions set aside if any."""
        text = self.result.summary()
        if self.failed:
            lines = "；".join(f"客户 {first}–{last}：{error}" for first, last, error in self.failed[:5])
            text += (f"\n{len(self.failed)} 个分区多次失败已搁置（{lines}）；"
                     "修复后再次运行 run-cycle --workers 重试。")
        elif self.unfinished:
            text += f"\n尚有 {self.unfinished} 个分区未完成：再次运行 run-cycle --workers 或 cycle-worker 继续。"
        return text


def prepare(session: Session, period: str, *, issue_date: date | None = None,
            partition_size: int = PARTITION_SIZE) -> Prepared:
    """Record the run and its partitions, or join the run already recorded; the caller commits.

    Idempotent: a period already running keeps its partitions (and issue date), its failed
    partitions go back to pending; a completed period is reported as done.
    """
    period_bounds(period)
    if partition_size < 1:
        raise BillingError("--partition-size: 必须为正整数")
    prepared = Prepared(period)
    run = session.scalar(select(CycleRun).where(CycleRun.period == period).with_for_update())
    if run is not None and run.status is CycleRunStatus.COMPLETED:
        prepared.already_done = True
        return prepared
    if run is None:
        now = datetime.now(UTC)
        run = CycleRun(period=period, issue_date=issue_date or now.date(), status=CycleRunStatus.RUNNING,
                       started_at=now)
        session.add(run)
        session.flush()
        ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        rows = [_partition_row(period, ids[offset], ids[min(offset + partition_size, len(ids)) - 1])
                for offset in range(0, len(ids), partition_size)]
        bulk_insert(session, CyclePartition.__table__, rows)
        prepared.created = True
    elif not session.scalar(select(func.count()).select_from(CyclePartition).where(CyclePartition.period == period)):
        raise BillingError(f"账期 {period} 正由单进程 run-cycle 运行（或已中断），不能分区续跑。")
    else:
        prepared.retried = session.execute(
            update(CyclePartition).where(CyclePartition.period == period,
                                         CyclePartition.status == PartitionStatus.FAILED)
            .values(status=PartitionStatus.PENDING, attempts=0)).rowcount or 0
    prepared.partitions = session.scalar(
        select(func.count()).select_from(CyclePartition).where(CyclePartition.period == period)) or 0
    return prepared


def _partition_row(period: str, first: int, last: int) -> dict[str, Any]:
    return {"period": period, "first_customer_id": first, "last_customer_id": last,
            "status": PartitionStatus.PENDING, "claimed_by": None, "lease_until": None, "attempts": 0,
            "error": None, **dict.fromkeys(_COUNTERS, 0), "late_fees": ZERO, "hits_by_rule": {},
            "finished_at": None}


def worker_name() -> str:
    """host:pid:random — unique per worker process, readable in `cycle_partitions.claimed_by`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]


def claim(session: Session, period: str, worker: str, lease: timedelta = LEASE) -> int | None:
    """Claim the next free partition (pending, or running under an expired lease) and commit the claim."""
    now = datetime.now(UTC)
    partition_id = session.scalar(
        select(CyclePartition.id).where(
            CyclePartition.period == period,
            or_(CyclePartition.status == PartitionStatus.PENDING,
                and_(CyclePartition.status == PartitionStatus.RUNNING, CyclePartition.lease_until < now)))
        .order_by(CyclePartition.first_customer_id).limit(1).with_for_update(skip_locked=True))
    if partition_id is None:
        session.rollback()
        return None
    session.execute(update(CyclePartition).where(CyclePartition.id == partition_id).values(
        status=PartitionStatus.RUNNING, claimed_by=worker, lease_until=now + lease,
        attempts=CyclePartition.attempts + 1))
    session.commit()
    return partition_id


class _RunLockedNumbers(Iterator[str]):
    """Work-order numbers taken under the run row's lock, on first use (the chunk's tail)."""

    def __init__(self, session: Session, run_id: int, on: date) -> None:
        self._session, self._run_id, self._on = session, run_id, on
        self._numbers: WorkOrderNumbers | None = None

    def __next__(self) -> str:
        if self._numbers is None:
            self._session.execute(select(CycleRun.id).where(CycleRun.id == self._run_id).with_for_update())
            self._numbers = WorkOrderNumbers(self._session, self._on)
        return next(self._numbers)


def process(session: Session, partition_id: int, worker: str, *, policy: OperationsPolicy | None = None,
            usage_loader: UsageLoader = default_usage_loader) -> bool:
    """Run one claimed partition in one transaction and commit it; False if the claim was lost."""
    partition = session.scalar(select(CyclePartition).where(CyclePartition.id == partition_id).with_for_update())
    if partition is None or partition.status is not PartitionStatus.RUNNING or partition.claimed_by != worker:
        session.rollback()
        return False
    period = partition.period
    run = session.scalar(select(CycleRun).where(CycleRun.period == period))
    if run is None:
        raise BillingError(f"账期 {period} 没有运行记录（cycle_runs）")
    policy = policy or load_policy()
    start, end = period_bounds(period)
    issue_date = run.issue_date
    due_date = issue_date + timedelta(days=policy.issue.due_days)
    # The same rule as run_cycle, fixed by the run's start so every worker issues at the same instant.
    issued_at = (run.started_at if run.started_at.astimezone(UTC).date() == issue_date
                 else datetime.combine(issue_date, datetime.min.time(), tzinfo=UTC))
    in_range = and_(Customer.id >= partition.first_customer_id, Customer.id <= partition.last_customer_id)
    ids = list(session.scalars(select(Customer.id).where(in_range).order_by(Customer.id)))
    billed = set(session.scalars(select(Bill.customer_id).where(
        Bill.period == period, Bill.status != BillStatus.COMPUTED,
        Bill.customer_id >= partition.first_customer_id, Bill.customer_id <= partition.last_customer_id)))
    todo = [cid for cid in ids if cid not in billed]
    result = CycleResult(period=period, customers=len(ids), skipped_existing=len(ids) - len(todo))
    if todo:
        _run_chunk(session, todo, period, start, end, policy, result,
                   _RunLockedNumbers(session, run.id, issue_date), due_date, issued_at, datetime.now(UTC),
                   previous_period(period), previous_period(period, 12), usage_loader)
    for name in _COUNTERS:
        setattr(partition, name, getattr(result, name))
    partition.late_fees = result.late_fees
    partition.hits_by_rule = dict(result.hits_by_rule)
    partition.status = PartitionStatus.DONE
    partition.error = None
    partition.lease_until = None
    partition.finished_at = datetime.now(UTC)
    session.commit()
    return True


def set_back(session: Session, partition_id: int, worker: str, error: str, max_attempts: int = MAX_ATTEMPTS) -> None:
    """After a chunk raised: pending again for a retry, or failed once it has had `max_attempts`."""
    session.execute(
        update(CyclePartition).where(CyclePartition.id == partition_id, CyclePartition.claimed_by == worker,
                                     CyclePartition.status == PartitionStatus.RUNNING)
        .values(status=case((CyclePartition.attempts >= max_attempts, PartitionStatus.FAILED.value),
                            else_=PartitionStatus.PENDING.value),
                error=error[:2000], lease_until=None))
    session.commit()


def status(session: Session, period: str) -> RunStatus:
    """The run's totals so far (the sum of its done partitions) and its partitions by status."""
    run = session.scalar(select(CycleRun).where(CycleRun.period == period))
    result = CycleResult(period=period)
    state = RunStatus(result, run.status if run is not None else None)
    for part in session.scalars(select(CyclePartition).where(CyclePartition.period == period)
                                .order_by(CyclePartition.first_customer_id)):
        state.by_status[part.status] = state.by_status.get(part.status, 0) + 1
        if part.status is PartitionStatus.FAILED:
            state.failed.append((part.first_customer_id, part.last_customer_id, part.error or ""))
        if part.status is not PartitionStatus.DONE:
            continue
        for name in _COUNTERS:
            setattr(result, name, getattr(result, name) + getattr(part, name))
        result.late_fees += part.late_fees or Decimal("0")
        for rule, count in (part.hits_by_rule or {}).items():
            result.hits_by_rule[rule] = result.hits_by_rule.get(rule, 0) + count
    return state


def finalize(session: Session, period: str) -> RunStatus:
    """Mark the run completed once every partition is done (any worker may call it; once wins)."""
    state = status(session, period)
    if state.finished or state.unfinished or state.failed:  # no lock: idle workers poll this
        session.rollback()
        return state
    run = session.scalar(select(CycleRun).where(CycleRun.period == period).with_for_update())
    state = status(session, period)
    if run is None or run.status is CycleRunStatus.COMPLETED or state.unfinished or state.failed:
        session.rollback()
        return state
    for name in ("customers", "skipped_existing", "bills_computed", "bills_held", "bills_issued", "blocked",
                 "review_work_orders"):
        setattr(run, name, getattr(state.result, name))
    run.status = CycleRunStatus.COMPLETED
    run.finished_at = datetime.now(UTC)
    session.commit()
    state.status = CycleRunStatus.COMPLETED
    return state


def worker_engine(url: str | None = None) -> Engine:
    """An engine for a cycle worker: on PostgreSQL, a vanished worker's transaction is ended by the server."""
    from billing_core.settings import database_url

    url = url or database_url()
    if url.startswith("postgresql"):
        return make_engine(url, pool_pre_ping=True, connect_args={
            "options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"})
    return make_engine(url, pool_pre_ping=True)


@dataclass
class WorkerStats:
    worker: str
    partitions: int = 0
    lost: int = 0  # claims taken over by another worker before this one committed
    errors: int = 0


def work(
    period: str, *, url: str | None = None, worker: str | None = None, lease: timedelta = LEASE,
    max_attempts: int = MAX_ATTEMPTS, poll: float = 0.5, usage_loader: UsageLoader = default_usage_loader,
    log: Callable[[str], None] = lambda _message: None, trace: Callable[[str], None] = lambda _message: None,
) -> WorkerStats:
    """Claim and run partitions of `period` until none is left, then finalize the run.

    `log` gets failures, take-overs and the exit; `trace` also each partition claimed and done
    (a province's month is ~19,000 partitions of 2,000).

    Waits while partitions are still running under other workers' leases, so a partition whose
    worker died is taken over here once its lease runs out. SIGTERM stops after the chunk in hand.
    """
    stats = WorkerStats(worker or worker_name())
    engine = worker_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    policy = load_policy()
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, stop) if _main_thread() else None
    database_errors = 0
    try:
        while not stopping:
            try:
                with sessions() as session:
                    partition_id = claim(session, period, stats.worker, lease)
                if partition_id is None:
                    with sessions() as session:
                        state = finalize(session, period)
                    if not state.unfinished:
                        log(f"{stats.worker}: 无待处理分区，退出（完成 {stats.partitions} 个）")
                        break
                    time.sleep(poll)
                    continue
                trace(f"{stats.worker}: 领取分区 {partition_id}")
                with sessions() as session:
                    try:
                        done = process(session, partition_id, stats.worker, policy=policy,
                                       usage_loader=usage_loader)
                    # Anything a chunk raises — bad data, a bug, the connection cut under its COPY
                    # (a driver error, not wrapped by SQLAlchemy) — sets the chunk back with the reason.
                    except Exception as exc:  # noqa: BLE001
                        _quiet_rollback(session)
                        stats.errors += 1
                        log(f"{stats.worker}: 分区 {partition_id} 失败：{exc.__class__.__name__}: {exc}")
                        with sessions() as retry_session:
                            set_back(retry_session, partition_id, stats.worker,
                                     f"{exc.__class__.__name__}: {exc}", max_attempts)
                        continue
                database_errors = 0
                stats.partitions += done
                stats.lost += not done
                (trace if done else log)(f"{stats.worker}: 分区 {partition_id} {'完成' if done else '已被其他进程接管'}")
            except Exception as exc:  # noqa: BLE001 - the database went away: wait, the lease protects the chunk
                stats.errors += 1
                database_errors += 1
                if database_errors >= MAX_DATABASE_ERRORS:
                    raise
                log(f"{stats.worker}: 数据库错误，稍后重试：{exc.__class__.__name__}")
                time.sleep(max(poll, DATABASE_RETRY_SECONDS))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        engine.dispose()
    return stats


def _quiet_rollback(session: Session) -> None:
    """Roll back; on a connection already dead there is nothing to roll back (the server did)."""
    try:
        session.rollback()
    except Exception:  # noqa: BLE001
        session.invalidate()


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def worker_command(period: str, lease: timedelta = LEASE, max_attempts: int = MAX_ATTEMPTS) -> list[str]:
    """The command line of one worker process (what `run_with_workers` starts N of)."""
    return [sys.executable, "-m", "billing_core.cli.billing", "cycle-worker", "--period", period,
            "--lease", str(max(1, int(lease.total_seconds()))), "--max-attempts", str(max_attempts)]


def run_with_workers(
    period: str, workers: int, *, url: str, lease: timedelta = LEASE, max_attempts: int = MAX_ATTEMPTS,
    progress: bool = False, log: Callable[[str], None] = lambda _message: None, log_every: float = 10.0,
) -> RunStatus:
    """Start `workers` worker processes on a prepared run, report progress, wait, and return the status.

    A worker that dies is not restarted: the others take its partition over when its lease ends.
    SIGTERM/Ctrl-C here is passed on to the workers, which stop after their chunk in hand. The
    database going away (a restart, a failover) only pauses the progress report: the workers wait
    for it (MAX_DATABASE_ERRORS), and so does this process.
    """
    env = {**os.environ, "POWERDESK_DATABASE_URL": url}
    engine = make_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(CyclePartition)
                               .where(CyclePartition.period == period)) or 0
    # Workers' stderr (their log) is passed through; their stdout (the summary) is this process's to print.
    processes = [subprocess.Popen(worker_command(period, lease, max_attempts), env=env, stdout=subprocess.DEVNULL)
                 for _ in range(workers)]
    bar = tqdm(total=total, desc=f"账期 {period}", unit="分区", disable=not progress, leave=False)
    last_log = time.monotonic()
    try:
        while any(p.poll() is None for p in processes):
            time.sleep(0.5)
            try:
                with sessions() as session:
                    state = status(session, period)
            except Exception as exc:  # noqa: BLE001 - a restart or failover: the workers ride it out, so do we
                if time.monotonic() - last_log >= log_every:
                    last_log = time.monotonic()
                    log(f"账期 {period}：数据库暂不可用（{exc.__class__.__name__}），等待工作进程继续")
                continue
            done = state.by_status.get(PartitionStatus.DONE, 0)
            bar.update(done - bar.n)
            if not progress and time.monotonic() - last_log >= log_every:
                last_log = time.monotonic()
                log(f"账期 {period}：分区 {done}/{total} 完成，已发行 {state.result.bills_issued} 张，"
                    f"暂缓 {state.result.bills_held} 张")
    except KeyboardInterrupt:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            p.wait()
        raise
    finally:
        bar.close()
    failed_workers = [p.returncode for p in processes if p.returncode]
    if failed_workers:
        log(f"{len(failed_workers)} 个工作进程异常退出（退出码 {failed_workers}）")
    with sessions() as session:
        state = finalize(session, period)
    engine.dispose()
    return state
