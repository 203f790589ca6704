"""The demo utility: reproducible from its seed, on SQLite and PostgreSQL, with bills that are
exactly what `compute_bill` gives for the stored readings, and the cases the desk must handle."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from billing_core.bill_types import BillRequest, CustomerCategory
from billing_core.tariffs.compute import compute_bill
from billing_core.consumption import AnomalyKind, load_consumption
from billing_core.db.engine import Base, make_engine
from billing_core.cycle.run import compute_period
from billing_core.demo.seed import (
    CYCLE_PERIOD,
    STATEMENT_HEADER,
    DemoNotEmptyError,
    SeedSummary,
    seed_demo,
)
from billing_core.db.models import (
    Bill,
    BillStatus,
    Customer,
    Meter,
    Payment,
    PaymentChannel,
    Reading,
)
from billing_core.periods import period_bounds

N = 40
TODAY = date(2026, 11, 23)


def _seed(url: str, tmp_path: Path, seed: int = 7, customers: int = N) -> SeedSummary:
    engine = make_engine(url)
    with Session(engine) as session:
        summary = seed_demo(session, customers=customers, seed=seed, statement_dir=tmp_path / f"demo-{seed}")
        session.commit()
    engine.dispose()
    return summary


def _fingerprint(url: str) -> dict[str, str]:
    """A digest of every billing table's rows in id order (what 'the same database' means)."""
    engine = make_engine(url)
    digests = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name not in {"customers", "meters", "readings", "bills", "bill_lines", "payments",
                                  "adjustments", "work_orders"}:
                continue
            order = [c for c in table.primary_key.columns]
            rows = connection.execute(table.select().order_by(*order)).all()
            digest = hashlib.sha256()
            for row in rows:
                digest.update(repr(tuple(_normal(v) for v in row)).encode())
            digests[table.name] = f"{len(rows)}:{digest.hexdigest()}"
    engine.dispose()
    return digests


def _normal(value: object) -> object:
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> tuple[str, SeedSummary]:
    return database_url, _seed(database_url, tmp_path)


def test_same_seed_same_utility_on_both_backends(seeded: tuple[str, SeedSummary], tmp_path: Path) -> None:
    url, summary = seeded
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    from billing_core.db.migrate import upgrade

    upgrade(reference)
    _seed(reference, tmp_path / "again")
    assert _fingerprint(url) == _fingerprint(reference)
    other = f"sqlite:///{tmp_path / 'other-seed.db'}"
    upgrade(other)
    _seed(other, tmp_path, seed=8)
    assert _fingerprint(other)["customers"] != _fingerprint(reference)["customers"]


def test_seeded_ids_leave_room_for_new_rows(seeded: tuple[str, SeedSummary]) -> None:
    """PostgreSQL sequences must have moved past the explicit ids the bulk insert wrote."""
    url, _ = seeded
    engine = make_engine(url)
    with Session(engine) as session:
        customer = Customer(account_no="099999999999", name="新客户", address="广州市天河区", category=CustomerCategory.RESIDENTIAL)
        session.add(customer)
        session.flush()
        session.add(Payment(customer_id=customer.id, amount=Decimal("10"), channel=PaymentChannel.ALIPAY,
                            paid_at=datetime.now(UTC), idempotency_key="after-seed"))
        session.commit()
        assert customer.id == N + 1
    engine.dispose()


def test_the_utility_has_every_case_the_desk_needs(seeded: tuple[str, SeedSummary]) -> None:
    url, summary = seeded
    engine = make_engine(url)
    with Session(engine) as session:
        customers = session.scalars(select(Customer)).all()
        assert len(customers) == N
        assert {c.category for c in customers} == set(CustomerCategory)
        assert {c.household_type.value for c in customers} == {"ordinary", "many_person", "shared_meter"}
        assert any(c.residential_tou for c in customers)
        two_part = [c for c in customers if c.category is CustomerCategory.CI_TWO_PART]
        assert {c.basic_charge_mode.value for c in two_part} == {"capacity", "demand"}  # type: ignore[union-attr]
        assert all(c.pf_standard == Decimal("0.90") and c.capacity_kva for c in two_part)
        assert all(len(c.account_no) == 12 and c.account_no.isdigit() for c in customers)
        assert all(c.name and c.address.startswith("广州市") and c.phone for c in customers)
        assert any(c.wechat_openid for c in customers) and any(c.withholding_agreement for c in customers)

        meters = session.scalars(select(Meter)).all()
        assert any(m.replaced_meter_id for m in meters) and any(m.final_reading for m in meters if m.removed_on)
        assert any(m.multiplier >= 1000 for m in meters)
        first, last = session.execute(select(func.min(Reading.read_date), func.max(Reading.read_date))).one()
        assert (first, last) == (date(2025, 9, 30), date(2026, 10, 31))
        registers = set(session.scalars(select(Reading.register).distinct()))
        assert {r.value for r in registers} >= {"active_total", "peak", "flat", "valley", "critical_peak",
                                               "reactive_total", "max_demand"}

        periods = set(session.scalars(select(Bill.period).distinct()))
        assert min(periods) == "2025-10" and max(periods) == "2026-09" and len(periods) == 12
        statuses = Counter(session.scalars(select(Bill.status)))
        assert statuses[BillStatus.PAID] and statuses[BillStatus.ISSUED] and statuses[BillStatus.PARTIALLY_PAID]
        overdue = session.scalars(select(Bill).where(Bill.status != BillStatus.PAID, Bill.due_date < TODAY)).all()
        assert overdue
        channels = set(session.scalars(select(Payment.channel).distinct()))
        assert channels == set(PaymentChannel)
        # Amounts paid never exceed the bill (partial payments are halves, nobody pays twice here).
        paid = dict(session.execute(select(Payment.bill_id, func.sum(Payment.amount)).group_by(Payment.bill_id)).all())
        for bill in session.scalars(select(Bill)):
            assert paid.get(bill.id, Decimal("0")) <= bill.amount
            assert (bill.status is BillStatus.PAID) == (paid.get(bill.id) == bill.amount)
    engine.dispose()
    # The unbilled periods are only those compute_bill has no tariff for.
    assert all("agricultural" in reason for reason in summary.unbilled)
    assert summary.backwards_accounts and summary.missing_day_accounts


def test_stored_bills_are_what_compute_bill_gives_for_the_stored_readings(seeded: tuple[str, SeedSummary]) -> None:
    url, _ = seeded
    engine = make_engine(url)
    with Session(engine) as session:
        bills = session.scalars(select(Bill).order_by(Bill.id)).all()
        assert len(bills) > N * 10
        checked = Counter()
        for bill in bills[::3]:  # a third of them, every category and month
            customer = bill.customer
            start, end = period_bounds(bill.period)
            usage = load_consumption(session, customer.id, start, end).to_usage()
            expected = compute_bill(BillRequest(account_no=customer.account_no, attributes=customer.tariff_attributes(),
                                                period_start=start, period_end=end, usage=usage))
            # unconfirmed_figures is what a computation reports, not stored (the notes keep the caveat)
            assert bill.to_computed() == expected.model_copy(update={"unconfirmed_figures": []}), (
                customer.account_no, bill.period)
            checked[customer.category] += 1
        assert checked[CustomerCategory.RESIDENTIAL] and checked[CustomerCategory.CI_TWO_PART]
    engine.dispose()


def test_bank_statement_has_the_three_exceptions(seeded: tuple[str, SeedSummary]) -> None:
    url, summary = seeded
    assert summary.statement_path is not None
    with summary.statement_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert tuple(header) == STATEMENT_HEADER
    assert all(r["currency"] == "CNY" and r["value_date"].startswith("2026-09") for r in rows)
    assert all(len(r["amount"].split(".")[1]) == 2 for r in rows)
    engine = make_engine(url)
    with Session(engine) as session:
        bank_payments = {
            p.external_ref: p
            for p in session.scalars(select(Payment).where(Payment.channel.in_(
                [PaymentChannel.BANK_WITHHOLDING, PaymentChannel.BANK_TRANSFER])))
        }
        bill_no = dict(session.execute(select(Bill.id, Bill.bill_no)).all())
    engine.dispose()
    by_bill = Counter(r["bill_no"] for r in rows)
    exceptions = summary.statement_exceptions
    assert by_bill[exceptions["duplicate_deduction"]] == 2
    assert by_bill[exceptions["missing_at_bank"]] == 0
    missing = [p for p in bank_payments.values() if bill_no[p.bill_id] == exceptions["missing_at_bank"]]
    assert len(missing) == 1  # we recorded it, the bank did not
    [mismatch] = [r for r in rows if r["bill_no"] == exceptions["amount_mismatch"]]
    assert Decimal(mismatch["amount"]) != bank_payments[mismatch["bank_txn_id"]].amount
    clean = [r for r in rows if r["bill_no"] not in exceptions.values()]
    assert clean and all(Decimal(r["amount"]) == bank_payments[r["bank_txn_id"]].amount for r in clean)


def test_the_cycle_computes_the_unbilled_month_once(seeded: tuple[str, SeedSummary]) -> None:
    url, summary = seeded
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Bill).where(Bill.period == CYCLE_PERIOD)) == 0
        result = compute_period(session, CYCLE_PERIOD)
        session.commit()
        held = {account for account, _ in result.held_for_review}
        assert set(summary.backwards_accounts) <= held
        assert all("需人工复核" in why for _, why in result.held_for_review)
        assert result.computed == N - len(held) - len(result.failed)
        stored = session.scalars(select(Bill).where(Bill.period == CYCLE_PERIOD)).all()
        assert len(stored) == result.computed and all(b.status is BillStatus.COMPUTED for b in stored)
        assert sum(b.amount for b in stored) == result.total
        again = compute_period(session, CYCLE_PERIOD)
        assert again.computed == 0 and again.already_billed == result.computed
        # A held account's readings really are anomalous, never negative consumption.
        customer = session.scalars(select(Customer).where(Customer.account_no == summary.backwards_accounts[0])).one()
        consumption = load_consumption(session, customer.id, *period_bounds(CYCLE_PERIOD))
        assert AnomalyKind.READING_DECREASED in {a.kind for a in consumption.anomalies}
    engine.dispose()


def test_seeding_a_populated_database_is_refused(seeded: tuple[str, SeedSummary], tmp_path: Path) -> None:
    url, _ = seeded
    engine = make_engine(url)
    with Session(engine) as session, pytest.raises(DemoNotEmptyError, match="database"):
        seed_demo(session, customers=5, seed=1, statement_dir=tmp_path)
    engine.dispose()


def test_cli_if_empty_leaves_a_populated_database_alone(database_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from billing_core.cli.demo import app

    monkeypatch.setenv("POWERDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("POWERDESK_VAR_DIR", str(tmp_path / "var"))
    runner = CliRunner()
    first = runner.invoke(app, ["seed", "--customers", "12", "--seed", "3"])
    assert first.exit_code == 0, first.output
    assert "演示数据已生成" in first.output
    assert (tmp_path / "var" / "demo" / "bank_statement_2026-09.csv").exists()
    before = _fingerprint(database_url)
    skipped = runner.invoke(app, ["seed", "--customers", "30", "--if-empty"])
    assert skipped.exit_code == 0 and "跳过" in skipped.output
    refused = runner.invoke(app, ["seed", "--customers", "30"])
    assert refused.exit_code == 2 and "已有客户数据" in refused.output
    assert _fingerprint(database_url) == before
    cycle = runner.invoke(app, ["cycle"])
    assert cycle.exit_code == 0 and "2026-10 账单计算" in cycle.output and "示例账单" in cycle.output
    bad = runner.invoke(app, ["cycle", "--period", "2026-13"])
    assert bad.exit_code == 2 and "period" in bad.output
