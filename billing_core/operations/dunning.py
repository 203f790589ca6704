"""Dunning (智能催费, T/CI 1281 §7.9) and late fees (电费违约金): the rules, free of any database.

Overdue bills escalate by days overdue and amount owed — a reminder, a second reminder, then a
call by an agent — and accrue a late fee at a daily rate per customer category, counted from
the day after the due date. Tiers and rates are policy data (`operations/policy.yaml`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing_core.errors import BillingError
from billing_core.money import ZERO, to_fen
from billing_core.operations.policy import DunningTier, OperationsPolicy, load_policy


def days_overdue(due_date: date, as_of: date) -> int:
    """Whole days past the due date; the due date itself is not overdue."""
    return max((as_of - due_date).days, 0)


def select_tier(days: int, amount_owed: Decimal, policy: OperationsPolicy | None = None) -> DunningTier | None:
    """The strongest tier whose day count and amount are both reached (None: not yet dunned)."""
    chosen = None
    for tier in (policy or load_policy()).dunning.tiers:
        if days >= tier.min_days_overdue and amount_owed >= tier.min_amount:
            chosen = tier
    return chosen


@dataclass(frozen=True)
class LateFee:
    """A late fee and how it was counted, so an agent can explain it line by line."""

    amount: Decimal
    principal: Decimal
    days_current_year: int
    days_across_years: int
    rate_current_year: Decimal
    rate_across_years: Decimal
    minimum_applied: bool

    @property
    def days(self) -> int:
        return self.days_current_year + self.days_across_years

    def explanation(self) -> str:
        """One Chinese sentence stating the count."""
        parts = []
        if self.days_current_year:
            parts.append(f"{self.principal}元 × {self.rate_current_year} × {self.days_current_year}天")
        if self.days_across_years:
            parts.append(f"{self.principal}元 × {self.rate_across_years} × {self.days_across_years}天（跨年度）")
        if not parts:
            return "未逾期，不计违约金。"
        text = "违约金自到期日次日起按日计算：" + " + ".join(parts) + f"，合计 {self.amount} 元"
        if self.minimum_applied:
            text += "（不足最低金额，按最低金额收取）"
        return text + "，四舍五入到分。"


def late_fee(
    principal: Decimal,
    due_date: date,
    as_of: date,
    category: str,
    policy: OperationsPolicy | None = None,
) -> LateFee:
    """Late fee on `principal` still owed at `as_of`.

    Days in the calendar year the bill fell due use the current-year rate; days in later
    years use the across-years rate (the arrears have become 跨年度欠费). The exact daily sum is
    rounded once, half-up to the fen.
    """
    if principal < ZERO:
        raise BillingError("must not be negative", field="principal")
    rules = (policy or load_policy()).late_fee
    rate = rules.daily_rate.get(category)
    if rate is None:
        raise BillingError(f"no late-fee rate for customer category {category!r}", field="category")
    days = days_overdue(due_date, as_of)
    end_of_due_year = date(due_date.year, 12, 31)
    days_current = min(days, (end_of_due_year - due_date).days)
    days_across = days - days_current
    exact = principal * (rate.current_year * days_current + rate.across_years * days_across)
    amount = to_fen(exact)
    minimum_applied = False
    if principal > ZERO and days > 0 and amount < rules.minimum_total:
        amount = rules.minimum_total
        minimum_applied = True
    return LateFee(
        amount=amount,
        principal=principal,
        days_current_year=days_current,
        days_across_years=days_across,
        rate_current_year=rate.current_year,
        rate_across_years=rate.across_years,
        minimum_applied=minimum_applied,
    )
