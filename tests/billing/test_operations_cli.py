"""`powerdesk billing run-cycle | pay | reconcile | dun | kpi`: real database, real commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from billing_core.cli.billing import app
from billing_core.db.engine import make_engine
from billing_core.db.models import Bill, Payment, WorkOrder
from billing_core.db.operations_models import CycleRun, StatementImport
from billing_core.operations.reconciliation import STATEMENT_HEADER
from tests.billing.test_cycle import seed_july

runner = CliRunner()


@pytest.fixture
def cli_db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """A migrated database seeded with July's readings, which the CLI uses via POWERDESK_DATABASE_URL."""
    monkeypatch.setenv("POWERDESK_DATABASE_URL", database_url)
    engine = make_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        seed_july(session)
        yield session
    engine.dispose()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_run_cycle_then_again(cli_db: Session) -> None:
    first = invoke("run-cycle", "--period", "2026-07", "--issue-date", "2026-08-02", "--no-progress")
    assert first.exit_code == 0, first.output
    assert "发行 1 张" in first.stdout and "核查暂缓 1 张" in first.stdout
    second = invoke("run-cycle", "--period", "2026-07", "--no-progress")
    assert second.exit_code == 0 and "未做任何更改" in second.stdout
    assert count(cli_db, CycleRun) == 1


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("run-cycle", "--period", "2026-7"), "--period"),
        (("run-cycle", "--period", "2026-07", "--issue-date", "02/08/2026"), "--issue-date"),
        (("kpi", "--period", "July"), "--period"),
        (("dun", "--as-of", "2026-02-30"), "--as-of"),
        (("pay", "--bill-no", "GD1", "--amount", "-5", "--channel", "alipay", "--key", "k"), "amount"),
        (("pay", "--bill-no", "GD1", "--amount", "5", "--channel", "alipay", "--key", "k", "--currency", "USD"),
         "currency"),
        (("pay", "--bill-no", "GD-NONE", "--amount", "5", "--channel", "alipay", "--key", "k"), "bill_no"),
        (("reconcile", "/nonexistent/statement.csv"), "FILE"),
    ],
)
def test_bad_input_exits_2_names_the_field_and_writes_nothing(cli_db: Session, args: tuple[str, ...],
                                                              field: str) -> None:
    before = [count(cli_db, m) for m in (Bill, Payment, WorkOrder, CycleRun)]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert field in result.stderr and result.stdout == ""
    assert [count(cli_db, m) for m in (Bill, Payment, WorkOrder, CycleRun)] == before


def test_pay_twice_with_one_key_is_one_payment(cli_db: Session) -> None:
    assert invoke("run-cycle", "--period", "2026-07", "--issue-date", "2026-08-02", "--no-progress").exit_code == 0
    bill = cli_db.scalar(select(Bill).where(Bill.bill_no == "GD202607440100000001"))
    args = ("pay", "--bill-no", bill.bill_no, "--amount", str(bill.amount), "--channel", "wechat_pay",
            "--key", "wx-9", "--paid-at", "2026-08-05T09:30:00+08:00")
    assert "已结清" in invoke(*args).stdout
    assert "不重复记账" in invoke(*args).stdout
    assert count(cli_db, Payment) == 1


def test_reconcile_a_file_with_a_wrong_header_is_refused(cli_db: Session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("txn,date\nT1,2026-08-01\n", encoding="utf-8")
    result = invoke("reconcile", str(bad))
    assert result.exit_code == 2 and "header" in result.stderr
    assert count(cli_db, StatementImport) == 0
    good = tmp_path / "good.csv"
    good.write_text(",".join(STATEMENT_HEADER) + "\nT1,2026-08-0x,440100000001,GD1,1.00,CNY,alipay,某\n",
                    encoding="utf-8")
    result = invoke("reconcile", str(good))
    assert result.exit_code == 0 and "第 2 行搁置：value_date" in result.stdout


def test_dun_and_kpi(cli_db: Session) -> None:
    assert invoke("run-cycle", "--period", "2026-07", "--issue-date", "2026-08-02", "--no-progress").exit_code == 0
    dun = invoke("dun", "--as-of", "2026-09-30")
    assert dun.exit_code == 0 and "逾期账单 1 张" in dun.stdout
    kpi = invoke("kpi", "--period", "2026-07")
    assert kpi.exit_code == 0 and "电费发行率" in kpi.stdout and "自动对账率" in kpi.stdout
    as_json = invoke("kpi", "--period", "2026-07", "--json")
    assert '"code": "issue_rate"' in as_json.stdout


def test_a_command_on_a_database_that_is_not_there_says_so_without_a_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection refused at the first step (the schema check) is a clear message and exit 1, not
    the driver's traceback, and not "run db upgrade": nothing is listening on a port just released."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("POWERDESK_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{port}/billing")
    result = invoke("kpi", "--period", "2026-07")
    assert result.exit_code == 1, result.output
    assert "无法连接数据库" in result.stderr and "未做任何更改" in result.stderr, result.stderr
    assert "db upgrade" not in result.stderr
    assert isinstance(result.exception, SystemExit), result.exception  # an exit, not an escaped error
