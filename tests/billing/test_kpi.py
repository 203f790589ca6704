"""KPIs of T/CI 1281 table 1: rates from numerators and denominators."""

from __future__ import annotations

from decimal import Decimal

from billing_core.operations.kpi import DEFINITIONS, KpiFacts, compute_kpis, format_table, percent


def facts(**kw: object) -> KpiFacts:
    base = dict(
        period="2026-07", customers_to_read=200, electronic_settlement_customers=150, bills_total=200,
        bills_in_error=3, review_work_orders=12, bills_to_issue=200, customers_issued=188,
        amount_received=Decimal("30000.00"), amount_receivable=Decimal("45000.00"),
        withholding_customers=40, customers_total=210, auto_reconciled_lines=97, statement_lines=100,
    )
    base.update(kw)
    return KpiFacts(**base)  # type: ignore[arg-type]


def test_seven_rates_in_table_order() -> None:
    values = {v.code: v for v in compute_kpis(facts())}
    assert [v.name for v in compute_kpis(facts())] == [d.name for d in DEFINITIONS]
    assert values["electronic_settlement_rate"].rate_percent == Decimal("75.00")
    assert values["billing_error_rate"].rate_percent == Decimal("1.50")
    assert values["review_rate"].rate_percent == Decimal("6.00")
    assert values["issue_rate"].rate_percent == Decimal("94.00")
    assert values["collection_rate"].rate_percent == Decimal("66.67")
    assert values["withholding_rate"].rate_percent == Decimal("19.05")
    assert values["auto_reconciliation_rate"].rate_percent == Decimal("97.00")


def test_a_zero_denominator_is_no_data_not_zero() -> None:
    values = {v.code: v for v in compute_kpis(facts(statement_lines=0, auto_reconciled_lines=0))}
    assert values["auto_reconciliation_rate"].rate_percent is None
    assert "无数据" in format_table("2026-07", list(values.values()))


def test_percent_rounds_half_up() -> None:
    assert percent(Decimal(1), Decimal(8)) == Decimal("12.50")
    assert percent(Decimal(1), Decimal(3)) == Decimal("33.33")
    assert percent(Decimal(2), Decimal(3)) == Decimal("66.67")


# --- counted from the database after a real cycle (SQLite and PostgreSQL) ------------------------

from datetime import UTC, datetime  # noqa: E402

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from billing_core.cycle.run import run_cycle  # noqa: E402
from billing_core.operations.kpi_store import collect_facts, period_kpis  # noqa: E402
from billing_core.db.models import Adjustment, AdjustmentStatus, Bill, BillStatus  # noqa: E402
from billing_core.operations.payments import PaymentRequest  # noqa: E402
from billing_core.operations.payments_store import post_payment  # noqa: E402
from billing_core.operations.reconciliation import STATEMENT_HEADER  # noqa: E402
from billing_core.operations.reconciliation_store import import_statement  # noqa: E402
from tests.billing.test_cycle import ISSUE, seed_july  # noqa: E402


def test_kpis_from_a_cycle_payments_and_a_statement(session: Session) -> None:
    people = seed_july(session)
    people["steady"].withholding_agreement = True
    run_cycle(session, "2026-07", issue_date=ISSUE)
    session.commit()
    steady = session.scalar(select(Bill).where(Bill.customer_id == people["steady"].id, Bill.period == "2026-07"))
    paid_at = datetime(2026, 8, 5, 9, tzinfo=UTC)
    post_payment(session, PaymentRequest.parse(steady.bill_no, steady.amount, "bank_withholding", "bw-1", paid_at))
    post_payment(session, PaymentRequest.parse(steady.bill_no, "10.00", "alipay", "ali-dup", paid_at))  # duplicate
    session.add(Adjustment(customer_id=people["steady"].id, bill_id=steady.id, kwh=Decimal("5"), reason="抄表差错",
                           status=AdjustmentStatus.APPROVED))
    session.commit()
    header = ",".join(STATEMENT_HEADER)
    import_statement(session, (
        f"{header}\nbw-1,2026-08-06,{people['steady'].account_no},{steady.bill_no},{steady.amount},CNY,"
        f"bank_withholding,测试客户1\nX2,2026-08-06,440100000001,GDX,1.00,CNY,bank_withholding,某\n"
        "X3,2026-08-3x,440100000001,GDX,1.00,CNY,bank_withholding,某\n").encode(), "aug.csv")
    session.commit()

    facts = collect_facts(session, "2026-07")
    assert facts.customers_to_read == 3
    assert facts.bills_total == 2  # the customer with backwards readings got no bill
    assert facts.bills_to_issue == 3  # ... but was due one
    assert facts.review_work_orders == 2 and facts.customers_issued == 1
    assert facts.electronic_settlement_customers == 1
    assert facts.amount_receivable == steady.amount
    assert facts.amount_received == steady.amount  # the 10.00 duplicate is owed back, not revenue
    assert facts.bills_in_error == 1
    assert (facts.withholding_customers, facts.customers_total) == (1, 3)
    # July's statement lines: none (the statement is dated August).
    assert (facts.auto_reconciled_lines, facts.statement_lines) == (0, 0)
    august = collect_facts(session, "2026-08")
    assert (august.auto_reconciled_lines, august.statement_lines) == (1, 3)

    rates = {v.code: v.rate_percent for v in period_kpis(session, "2026-07")}
    assert rates["issue_rate"] == Decimal("33.33")
    assert rates["review_rate"] == Decimal("66.67")
    assert rates["collection_rate"] == Decimal("100.00")
    assert rates["auto_reconciliation_rate"] is None
    assert {v.code: v.rate_percent for v in period_kpis(session, "2026-08")}["auto_reconciliation_rate"] == \
        Decimal("33.33")
    assert session.scalar(select(Bill.status).where(Bill.id == steady.id)) is BillStatus.PAID
