"""Billing KPIs of T/CI 1281-2025 table 1 for one period, each with its numerator and denominator.

The counts come from the database (`kpi_store.collect_facts`); this module only turns counts
into rates, so each figure can be checked by hand. A rate with a zero denominator is None
(「无数据」), never a made-up 0 % or 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True)
class KpiDefinition:
    code: str
    name: str  # as in table 1
    numerator: str  # what is counted, in the standard's words
    denominator: str


DEFINITIONS: tuple[KpiDefinition, ...] = (
    KpiDefinition("electronic_settlement_rate", "电子化结算率", "电子化结算客户数", "应抄表客户数"),
    KpiDefinition("billing_error_rate", "电费差错率", "电费差错数", "当月电费账单总数"),
    KpiDefinition("review_rate", "分散复核率", "核查规则自动筛查出的客户电量电费异常的工单数", "应发行账单数"),
    KpiDefinition("issue_rate", "电费发行率", "当月实际发行的客户数量", "应发行数量"),
    KpiDefinition("collection_rate", "电费回收率", "实收电费", "应收电费"),
    KpiDefinition("withholding_rate", "批扣代扣比率", "电费批扣代扣协议签订户数", "用电总户数"),
    KpiDefinition("auto_reconciliation_rate", "自动对账率", "自动对账笔数", "当月总笔数"),
)
DEFINITION_BY_CODE = {d.code: d for d in DEFINITIONS}


@dataclass(frozen=True)
class KpiValue:
    code: str
    name: str
    numerator: Decimal
    denominator: Decimal
    numerator_label: str
    denominator_label: str

    @property
    def rate_percent(self) -> Decimal | None:
        """numerator / denominator × 100, half-up to 0.01 %; None when nothing to divide by."""
        return percent(self.numerator, self.denominator)

    def as_dict(self) -> dict[str, str | None]:
        rate = self.rate_percent
        return {
            "code": self.code,
            "name": self.name,
            "numerator": str(self.numerator),
            "numerator_label": self.numerator_label,
            "denominator": str(self.denominator),
            "denominator_label": self.denominator_label,
            "rate_percent": None if rate is None else str(rate),
        }


def percent(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class KpiFacts:
    """The counts and sums behind table 1 for one period (YYYY-MM)."""

    period: str
    customers_to_read: int  # 应抄表客户数: customers with a meter in service
    electronic_settlement_customers: int  # paid this period's bill only through electronic channels
    bills_total: int  # 当月电费账单总数 (every bill computed for the period)
    bills_in_error: int  # bills corrected afterwards (adjustment, cancelled and re-issued, upheld dispute)
    review_work_orders: int  # review work orders raised by the verification rules
    bills_to_issue: int  # 应发行账单数 / 应发行数量
    customers_issued: int  # 当月实际发行的客户数量
    amount_received: Decimal  # 实收电费 against the period's issued bills
    amount_receivable: Decimal  # 应收电费: total of the period's issued bills
    withholding_customers: int  # 批扣代扣协议签订户数
    customers_total: int  # 用电总户数
    auto_reconciled_lines: int  # 自动对账笔数
    statement_lines: int  # 当月总笔数 (every bank line of the month, set-aside ones included)


def compute_kpis(facts: KpiFacts) -> list[KpiValue]:
    """The seven rates in table-1 order."""
    pairs = {
        "electronic_settlement_rate": (facts.electronic_settlement_customers, facts.customers_to_read),
        "billing_error_rate": (facts.bills_in_error, facts.bills_total),
        "review_rate": (facts.review_work_orders, facts.bills_to_issue),
        "issue_rate": (facts.customers_issued, facts.bills_to_issue),
        "collection_rate": (facts.amount_received, facts.amount_receivable),
        "withholding_rate": (facts.withholding_customers, facts.customers_total),
        "auto_reconciliation_rate": (facts.auto_reconciled_lines, facts.statement_lines),
    }
    values = []
    for definition in DEFINITIONS:
        numerator, denominator = pairs[definition.code]
        values.append(
            KpiValue(
                definition.code, definition.name, Decimal(numerator), Decimal(denominator),
                definition.numerator, definition.denominator,
            )
        )
    return values


def format_table(period: str, values: list[KpiValue]) -> str:
    """A plain-text table for the terminal."""
    lines = [f"电费智能服务关键绩效指标（T/CI 1281—2025 表1） 账期 {period}"]
    for value in values:
        rate = value.rate_percent
        shown = "无数据" if rate is None else f"{rate}%"
        lines.append(
            f"{value.name}：{shown}（{value.numerator_label} {value.numerator} / "
            f"{value.denominator_label} {value.denominator}）"
        )
    return "\n".join(lines)
