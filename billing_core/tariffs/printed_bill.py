"""A computed bill written the way the customer reads a printed one: line groups with subtotals.

Staff hold a real China Southern Grid bill beside ours: it prints, per charge, one row per TOU
period (峰/平/谷) and the group's amount, then the basic charge, the PF adjustment, the funds
and the total. This writes a `ComputedBill` in that order and wording, from the bill's own lines
(nothing is recomputed here), so a difference shows on the line where it is.
"""

from __future__ import annotations

from decimal import Decimal

from billing_core.bill_types import ComputedBill, LineItem
from billing_core.number_text import quantity_text
from billing_core.tariffs.ci import COMPONENT_CN, COMPONENTS
from billing_core.tariffs.draft import PERIOD_CN, PERIODS

UNIT_CN = {"kWh": "千瓦时", "kVA·月": "千伏安·月", "kW·月": "千瓦·月", "项": "项", "元": "元"}
_FIRST = {**{c: i for i, c in enumerate(COMPONENTS)}, "market_allocation": len(COMPONENTS)}
_LAST = {"pf_adjustment": 1, "government_funds": 2, "late_fee": 3}


def _group_of(line: LineItem) -> tuple[str, str, str | None]:
    """(group key, group title, the row's label inside the group or None for a one-line group)."""
    head, _, period = line.code.rpartition("_")
    if head in COMPONENT_CN and period in PERIODS:
        return head, COMPONENT_CN[head], PERIOD_CN[period]
    if line.code.startswith("tou_") and line.code[4:] in PERIODS:
        return "tou", "分时电费", PERIOD_CN[line.code[4:]]
    return line.code, line.name, None


def _row(line: LineItem) -> str:
    """「6910.35 千瓦时 × 0.642117 元/千瓦时 = 4437.25 元」 from the line's own figures."""
    if line.unit == "%":
        percent = quantity_text(line.unit_price * 100)
        return f"{line.quantity} 元 × {percent}% = {line.amount} 元"
    unit = UNIT_CN.get(line.unit, line.unit)
    price = format(line.unit_price, "f")
    if line.unit == "项":
        return f"{price} 元"
    return f"{quantity_text(line.quantity)} {unit} × {price} 元/{unit} = {line.amount} 元"


def _span(line: LineItem) -> str:
    return f"（{line.period_start}至{line.period_end}）" if line.period_start is not None else ""


def printed_bill(bill: ComputedBill, *, why: bool = False) -> list[str]:
    """The bill as text lines, in Chinese; `why` adds each line's explanation under it."""
    groups: dict[str, tuple[str, list[tuple[str | None, LineItem]]]] = {}
    for line in bill.lines:
        key, title, label = _group_of(line)
        groups.setdefault(key, (title, []))[1].append((label, line))
    order = sorted(
        enumerate(groups),
        key=lambda item: (0, _FIRST[item[1]], 0) if item[1] in _FIRST
        else (2, _LAST[item[1]], 0) if item[1] in _LAST else (1, 0, item[0]),
    )
    width = 36
    out = [
        "电费账单（按计费规则逐行复算，供与纸质账单核对）",
        f"户号：{bill.account_no or '—'}　账期：{bill.period_start} 至 {bill.period_end}　"
        f"用电量：{quantity_text(bill.total_kwh)} 千瓦时",
        "",
    ]
    for _, key in order:
        title, rows = groups[key]
        subtotal = sum((line.amount for _, line in rows), Decimal("0"))
        out.append(f"{title}{' ' * max(1, width - 2 * len(title))}{subtotal} 元")
        for label, line in rows:
            prefix = f"  {label}{_span(line)}  " if label is not None else f"  {_span(line)}"
            out.append(prefix + _row(line))
            if why:
                out.append(f"      {line.explanation}")
    out.append(f"合计{' ' * (width - 4)}{bill.total} 元")
    out.append(f"（{bill.rounding}）")
    if bill.notes:
        out.append("说明：")
        out.extend(f"  · {note}" for note in bill.notes)
    if bill.unconfirmed_figures:
        out.append("未经确认的数据：")
        out.extend(f"  · {item}" for item in bill.unconfirmed_figures)
    return out
