"""KPIs of T/CI 1281 table 1: rates from numerators and denominators."""

from __future__ import annotations

from decimal import Decimal

from billing_core.kpi import DEFINITIONS, KpiFacts, compute_kpis, format_table, percent


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
