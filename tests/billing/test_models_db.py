"""The billing schema on SQLite and a real PostgreSQL: migrations equal the models, constraints hold,
money and timestamps come back exactly as written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from billing_core.bill_types import (
    BasicChargeMode,
    ComputedBill,
    CustomerCategory,
    HouseholdType,
    LineItem,
    PurchaseMode,
)
from billing_core.db.engine import make_engine
from billing_core.db.migrate import VERSION_TABLE, billing_metadata, current_revision, head_revision, upgrade
from billing_core.db.models import (
    Bill,
    BillStatus,
    Customer,
    Meter,
    Payment,
    PaymentChannel,
    Reading,
    ReadingRegister,
    WorkOrder,
    WorkOrderKind,
    WorkOrderStatus,
    bill_from_computed,
    next_work_order_no,
)


def _schema_diff(url: str, metadata: MetaData) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "version_table": VERSION_TABLE,
                    "include_name": lambda name, type_, _p: type_ != "table" or name in metadata.tables,
                },
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_upgrade_on_an_empty_database_gives_exactly_the_models_schema(empty_database_url: str) -> None:
    assert current_revision(empty_database_url) is None
    upgrade(empty_database_url)
    assert current_revision(empty_database_url) == head_revision()
    tables = set(inspect(make_engine(empty_database_url)).get_table_names())
    assert set(billing_metadata().tables) | {VERSION_TABLE} == tables
    assert _schema_diff(empty_database_url, billing_metadata()) == []


def test_a_model_change_without_a_revision_is_detected(database_url: str) -> None:
    """The comparison above can fail: a column the migrations lack shows up as a difference."""
    drifted = MetaData()
    for table in billing_metadata().tables.values():
        table.to_metadata(drifted)
    drifted.tables["customers"].append_column(Column("nickname", String(20)))
    diff = _schema_diff(database_url, drifted)
    assert [d[0] for d in diff] == ["add_column"]  # type: ignore[index]
    assert diff[0][3].name == "nickname"  # type: ignore[index]


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def _customer(account_no: str = "020100000001", **overrides: object) -> Customer:
    fields: dict[str, object] = dict(
        account_no=account_no,
        name="陈志强",
        phone="13800138000",
        id_last4="123X",
        address="广州市天河区体育西路 1 号",
        category=CustomerCategory.CI_TWO_PART,
        voltage_level="1-10kV",
        capacity_kva=Decimal("630"),
        basic_charge_mode=BasicChargeMode.DEMAND,
        contracted_demand_kw=Decimal("400"),
        pf_standard=Decimal("0.90"),
        purchase_mode=PurchaseMode.AGENCY,
        agency_price_multiplier=Decimal("1.5"),
    )
    fields.update(overrides)
    return Customer(**fields)


def test_customer_round_trip_and_tariff_attributes(session: Session) -> None:
    session.add(_customer())
    session.commit()
    session.expunge_all()
    customer = session.scalars(select(Customer)).one()
    attributes = customer.tariff_attributes()
    assert attributes.category is CustomerCategory.CI_TWO_PART
    assert attributes.basic_charge_mode is BasicChargeMode.DEMAND
    assert attributes.contracted_demand_kw == Decimal("400")
    assert attributes.pf_standard == Decimal("0.90")
    assert attributes.agency_price_multiplier == Decimal("1.5")
    assert attributes.household_type is HouseholdType.ORDINARY
    assert customer.prepaid_balance == Decimal("0") and customer.withholding_agreement is False
    assert customer.created_at.tzinfo is not None
    assert abs(customer.created_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_account_no_must_be_twelve_digits() -> None:
    with pytest.raises(ValueError, match="account_no"):
        _customer(account_no="12345")


def test_account_no_and_openid_are_unique(session: Session) -> None:
    session.add_all([_customer(wechat_openid="o-1"), _customer()])
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add_all([_customer(wechat_openid="o-1"), _customer("020100000002", wechat_openid="o-1")])
    with pytest.raises(IntegrityError):
        session.commit()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Reading(meter_id=999, read_date=date(2026, 1, 1), register=ReadingRegister.ACTIVE_TOTAL,
                        value=Decimal("1")))
    with pytest.raises(IntegrityError):
        session.commit()


def test_one_reading_per_meter_day_and_register(session: Session) -> None:
    customer = _customer()
    meter = Meter(asset_no="M1", customer=customer, multiplier=Decimal("1000"), installed_on=date(2025, 1, 1))
    session.add(meter)
    session.flush()
    values = [("167.70", ReadingRegister.ACTIVE_TOTAL), ("12.5", ReadingRegister.REACTIVE_TOTAL)]
    for value, register in values:
        session.add(Reading(meter_id=meter.id, read_date=date(2026, 1, 1), register=register, value=Decimal(value)))
    session.commit()
    stored = session.scalars(select(Reading.value).order_by(Reading.register)).all()
    assert stored == [Decimal("167.700"), Decimal("12.500")]
    session.add(Reading(meter_id=meter.id, read_date=date(2026, 1, 1), register=ReadingRegister.ACTIVE_TOTAL,
                        value=Decimal("168")))
    with pytest.raises(IntegrityError):
        session.commit()


def _computed(account_no: str) -> ComputedBill:
    lines = [
        LineItem(code="tier_1", name="第一档电费", quantity=Decimal("260"), unit="kWh",
                 unit_price=Decimal("0.58886875"), amount=Decimal("153.11"),
                 tariff_version="gd-residential-tiers@2017-07-01", source="粤发改价格〔2017〕498号",
                 explanation="第一档 260 千瓦时按 0.58886875 元计。"),
        LineItem(code="tier_2", name="第二档电费", quantity=Decimal("140.123456"), unit="kWh",
                 unit_price=Decimal("0.63886875"), amount=Decimal("89.52"),
                 tariff_version="gd-residential-tiers@2017-07-01", source="粤发改价格〔2017〕498号",
                 explanation="第二档按 0.63886875 元计。", period_start=date(2026, 7, 1),
                 period_end=date(2026, 7, 31)),
    ]
    return ComputedBill(account_no=account_no, period_start=date(2026, 7, 1), period_end=date(2026, 7, 31),
                        total_kwh=Decimal("400.123"), lines=lines, total=Decimal("242.63"),
                        notes=["七月为夏季，按夏季阶梯计"], tariff_versions=["gd-residential-tiers@2017-07-01"])


def test_a_stored_bill_reads_back_as_the_computed_bill(session: Session) -> None:
    customer = _customer(category=CustomerCategory.RESIDENTIAL)
    session.add(customer)
    session.flush()
    computed = _computed(customer.account_no)
    session.add(bill_from_computed(customer.id, "2026-07", computed))
    session.commit()
    session.expunge_all()
    bill = session.scalars(select(Bill)).one()
    assert bill.status is BillStatus.COMPUTED
    assert bill.to_computed() == computed
    session.add(bill_from_computed(customer.id, "2026-07", computed))
    with pytest.raises(IntegrityError):  # one bill per customer and month
        session.commit()


def test_a_bill_has_at_most_one_open_dispute(session: Session) -> None:
    customer = _customer(category=CustomerCategory.RESIDENTIAL)
    session.add(customer)
    session.flush()
    bill = bill_from_computed(customer.id, "2026-07", _computed(customer.account_no))
    session.add(bill)
    session.flush()

    def dispute(no: str, status: WorkOrderStatus) -> WorkOrder:
        return WorkOrder(no=no, kind=WorkOrderKind.DISPUTE, bill_id=bill.id, status=status, title="电费异议")

    # Closed disputes and other kinds of work order on the same bill do not count.
    session.add_all([dispute("WO202607010001", WorkOrderStatus.CLOSED),
                     dispute("WO202607010002", WorkOrderStatus.OPEN),
                     WorkOrder(no="WO202607010003", kind=WorkOrderKind.REVIEW, bill_id=bill.id, title="复核")])
    session.commit()
    session.add(dispute("WO202607010004", WorkOrderStatus.IN_PROGRESS))
    with pytest.raises(IntegrityError):
        session.commit()


def test_bill_period_must_be_a_month() -> None:
    with pytest.raises(ValueError, match="period"):
        Bill(period="2026-13")


def test_payment_idempotency_key_is_unique_and_amount_positive(session: Session) -> None:
    customer = _customer()
    session.add(customer)
    session.flush()
    paid_at = datetime(2026, 9, 5, 10, 30, tzinfo=timezone(timedelta(hours=8)))
    payment = dict(customer_id=customer.id, amount=Decimal("1234567.89"), channel=PaymentChannel.ALIPAY,
                   paid_at=paid_at)
    session.add(Payment(idempotency_key="k1", **payment))
    session.commit()
    session.expunge_all()
    stored = session.scalars(select(Payment)).one()
    assert stored.amount == Decimal("1234567.89") and stored.currency == "CNY"
    assert stored.paid_at == paid_at and stored.paid_at.utcoffset() == timedelta(0)
    session.add(Payment(idempotency_key="k1", **payment))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add(Payment(idempotency_key="k2", **{**payment, "amount": Decimal("0")}))
    with pytest.raises(IntegrityError):
        session.commit()


def test_naive_timestamps_are_refused(session: Session) -> None:
    customer = _customer()
    session.add(customer)
    session.flush()
    session.add(Payment(customer_id=customer.id, amount=Decimal("1"), channel=PaymentChannel.COUNTER,
                        paid_at=datetime(2026, 9, 5, 10, 30), idempotency_key="naive"))
    with pytest.raises(StatementError, match="naive datetime"):
        session.commit()


def test_unknown_enum_values_are_refused(session: Session) -> None:
    customer = _customer()
    session.add(customer)
    session.flush()
    session.add(Payment(customer_id=customer.id, amount=Decimal("1"), channel="cash_in_envelope",
                        paid_at=datetime.now(UTC), idempotency_key="bad-channel"))
    with pytest.raises(StatementError, match="cash_in_envelope"):
        session.commit()


def test_work_order_numbers_count_up_per_day(session: Session) -> None:
    day = date(2026, 11, 5)
    first = next_work_order_no(session, day)
    assert first == "WO202611050001"
    session.add(WorkOrder(no=first, kind=WorkOrderKind.REVIEW, title="复核", payload={"rule": "jump"}))
    session.flush()
    assert next_work_order_no(session, day) == "WO202611050002"
    assert next_work_order_no(session, date(2026, 11, 6)) == "WO202611060001"
    session.commit()
    session.expunge_all()
    assert session.scalars(select(WorkOrder)).one().payload == {"rule": "jump"}


def test_work_order_numbers_keep_counting_past_9999_a_day(session: Session) -> None:
    day = date(2026, 11, 5)
    for no in ("WO202611059998", "WO202611059999"):
        session.add(WorkOrder(no=no, kind=WorkOrderKind.REVIEW, title="复核"))
    session.flush()
    assert next_work_order_no(session, day) == "WO2026110510000"
    session.add(WorkOrder(no="WO2026110510000", kind=WorkOrderKind.REVIEW, title="复核"))
    session.flush()
    assert next_work_order_no(session, day) == "WO2026110510001"


def test_session_scope_commits_or_rolls_back(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from billing_core.db.engine import get_engine, session_scope

    monkeypatch.setenv("POWERDESK_DATABASE_URL", database_url)
    assert str(get_engine().url) == str(make_engine(database_url).url)
    with session_scope() as session:
        session.add(_customer())
    with pytest.raises(RuntimeError), session_scope() as session:
        session.add(_customer("020100000002"))
        session.flush()
        raise RuntimeError("the unit of work failed")
    with session_scope() as session:
        assert session.scalars(select(Customer.account_no)).all() == ["020100000001"]
    get_engine().dispose()


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragma.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_missing_postgres_binaries_fail_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PostgreSQL launcher must fail (never skip) and say how to install the server."""
    from tests.servers import postgres

    monkeypatch.setattr(postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(RuntimeError, match="install.sh"):
        postgres.find_bin_dir()
