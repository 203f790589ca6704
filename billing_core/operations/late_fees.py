"""Late fees (违约金) onto the customer's next bill, each overdue bill's fee once.

Dunning records the late fee of an overdue bill as counted on a day (`late_fee_accruals`); each
row is the whole fee from the due date to that day, so rows of one bill are snapshots, not
increments. When a customer's next bill is issued, every overdue bill with an unbilled count
gets one 违约金 line: its latest count not later than the issue date, less what earlier bills
already charged for it (the highest count already billed). The counts used are marked with the
new bill's id in the same transaction, only where still unmarked — a second or concurrent run
finds nothing to bill (or fails and rolls back), so a fee is never billed twice.

The fee is a separate line: it is not energy, so it never enters tiers, the power-factor
adjustment or the verification rules (which run before it is added).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, case, select
from sqlalchemy.orm import Session

from billing_core.bill_types import LATE_FEE_LINE_CODE, LineItem
from billing_core.db.bulk import among, bulk_insert
from billing_core.errors import BillingError
from billing_core.db.models import Bill, BillLine
from billing_core.money import ZERO
from billing_core.db.operations_models import LateFeeAccrual

LATE_FEE_SOURCE = "《供电营业规则》（1996）第九十八条；T/CI 1281 §7.9 智能催费"
LATE_FEE_VERSION = "operations_policy:late_fee"


@dataclass(frozen=True)
class LateFeeCharge:
    """What one overdue bill adds to the next bill, and the accrual rows it settles."""

    overdue_bill_id: int
    overdue_bill_no: str
    overdue_period: str
    counted_to: date
    amount: Decimal
    already_billed: Decimal
    accrual_explanation: str
    accrual_ids: tuple[int, ...]

    def line(self) -> LineItem:
        """The 违约金 line, naming the overdue bill's period and number."""
        text = (f"{self.overdue_period} 账单 {self.overdue_bill_no} 逾期未缴清，截至 {self.counted_to} "
                f"{self.accrual_explanation}")
        if self.already_billed > ZERO:
            text += f"此前账单已收取 {self.already_billed} 元，本期收取差额 {self.amount} 元。"
        text += "违约金单列，不计入电费，不参与阶梯和力调。"
        return LineItem(
            code=LATE_FEE_LINE_CODE, name="违约金", quantity=Decimal("1"), unit="笔", unit_price=self.amount,
            amount=self.amount, tariff_version=LATE_FEE_VERSION, source=LATE_FEE_SOURCE, explanation=text,
        )


def pending_late_fees(session: Session, customer_ids: Sequence[int], as_of: date) -> dict[int, list[LateFeeCharge]]:
    """Customer id → the late fees not yet billed, counted up to `as_of` (locks the rows read)."""
    by_bill: dict[int, list[Any]] = defaultdict(list)
    for start in range(0, len(customer_ids), 1000):
        rows = session.execute(
            select(LateFeeAccrual.id, LateFeeAccrual.bill_id, LateFeeAccrual.as_of, LateFeeAccrual.amount,
                   LateFeeAccrual.explanation, LateFeeAccrual.billed_bill_id, Bill.customer_id, Bill.bill_no,
                   Bill.period)
            .join(Bill, Bill.id == LateFeeAccrual.bill_id)
            .where(among(session, Bill.customer_id, customer_ids[start : start + 1000]), LateFeeAccrual.as_of <= as_of)
            .order_by(LateFeeAccrual.bill_id, LateFeeAccrual.as_of)
            .with_for_update(of=LateFeeAccrual)  # PostgreSQL: a concurrent run waits, then sees our marks
        ).all()
        for row in rows:
            by_bill[row.bill_id].append(row)
    charges: dict[int, list[LateFeeCharge]] = defaultdict(list)
    for bill_id, rows in by_bill.items():
        unbilled = [row for row in rows if row.billed_bill_id is None]
        if not unbilled:
            continue
        latest = unbilled[-1]  # ordered by as_of
        already = max((Decimal(row.amount) for row in rows if row.billed_bill_id is not None), default=ZERO)
        charges[latest.customer_id].append(LateFeeCharge(
            overdue_bill_id=bill_id, overdue_bill_no=latest.bill_no or "", overdue_period=latest.period,
            counted_to=latest.as_of, amount=max(Decimal(latest.amount) - already, ZERO), already_billed=already,
            accrual_explanation=latest.explanation, accrual_ids=tuple(row.id for row in unbilled),
        ))
    return charges


def put_late_fees_on_bills(session: Session, targets: Mapping[int, tuple[int, int]], as_of: date) -> dict[int, Decimal]:
    """Add each customer's pending late fees to their new bill; return bill id → fees added.

    `targets` maps customer id → (new bill id, position of its first free line). The bill's
    amount grows by the fees; the accruals used are marked with the bill id. A count that has
    no amount left to charge (already billed in full) is marked without a line.
    """
    if not targets:
        return {}
    charges = pending_late_fees(session, list(targets), as_of)
    line_rows: list[dict[str, Any]] = []
    marks: dict[int, int] = {}  # accrual id → the bill that charges it
    added: dict[int, Decimal] = {}
    for customer_id, customer_charges in charges.items():
        bill_id, position = targets[customer_id]
        for charge in customer_charges:
            marks.update(dict.fromkeys(charge.accrual_ids, bill_id))
            if charge.amount <= ZERO:
                continue
            item = charge.line()
            line_rows.append({
                "bill_id": bill_id, "position": position, "code": item.code, "name": item.name,
                "quantity": item.quantity, "unit": item.unit, "unit_price": item.unit_price, "amount": item.amount,
                "tariff_version": item.tariff_version, "source": item.source, "explanation": item.explanation,
                "period_start": None, "period_end": None,
            })
            position += 1
            added[bill_id] = added.get(bill_id, ZERO) + item.amount
    _claim(session, marks)
    if line_rows:
        bulk_insert(session, BillLine.__table__, line_rows)
    if added:
        # The new total is added up here in Decimal, not in SQL: SQLite would add floats.
        bills = Bill.__table__
        totals = {row[0]: row[1] for row in session.execute(
            select(bills.c.id, bills.c.amount).where(bills.c.id.in_(list(added))))}
        session.execute(
            bills.update().where(bills.c.id == bindparam("b_id")).values(amount=bindparam("b_amount")),
            [{"b_id": bill_id, "b_amount": Decimal(totals[bill_id]) + fee} for bill_id, fee in added.items()],
        )
    return added


def _claim(session: Session, marks: Mapping[int, int]) -> None:
    """Set `billed_bill_id` where it is still NULL, a few hundred rows per statement (one rowcount
    every driver reports); any row already taken means a concurrent run billed it: fail, roll back."""
    table = LateFeeAccrual.__table__
    ids = list(marks)
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        claimed = session.execute(
            table.update().where(table.c.id.in_(batch), table.c.billed_bill_id.is_(None))
            .values(billed_bill_id=case({accrual_id: marks[accrual_id] for accrual_id in batch}, value=table.c.id))
        ).rowcount
        if claimed != len(batch):
            raise BillingError("a late fee was billed by another run at the same time; nothing was written, "
                               "run again（违约金已被同时运行的出账占用，本次未写入，请重试）", field="late_fee_accruals")
