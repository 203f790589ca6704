"""Which kind of dispute or complaint the customer's words describe, for the work order.

The tools take a category (`tools.open_dispute.DisputeCategory`,
`tools.intake_complaint.ComplaintCategory`); the local brain picks it from the customer's own
reason with these keyword tables, first match wins, `other` when none does. The order matters:
「重复扣了违约金」 is a duplicate payment before it is a late-fee question, and the catch-all
「高/多/错」 of `amount_too_high` comes last.
"""

from __future__ import annotations

import re

Table = tuple[tuple[re.Pattern[str], str], ...]

DISPUTE_CATEGORIES: Table = (
    (re.compile(r"重复|扣了两次|交了两次|多扣"), "duplicate_payment"),
    (re.compile(r"违约金|滞纳金"), "late_fee"),
    (re.compile(r"退补|补收|追补"), "back_charge"),
    (re.compile(r"读数|抄表|电量|度数|表不准|电表"), "reading_wrong"),
    (re.compile(r"电价|类别|倍率|单价"), "tariff_wrong"),
    (re.compile(r"高|多|贵|不对|有误|错"), "amount_too_high"),
)
COMPLAINT_CATEGORIES: Table = (
    (re.compile(r"态度|骂|凶|不耐烦|没礼貌"), "service_attitude"),
    (re.compile(r"拖|慢|一直没|没人管|没处理|推诿"), "delay"),
    (re.compile(r"核查结果|异议|处理结果"), "dispute_handling"),
    (re.compile(r"承诺|答应|说好"), "promise_broken"),
    (re.compile(r"算错|电费错|多收|乱收"), "billing_error"),
)
# The message that asked for a dispute already says why (「5月读数不对，申请核查」): no need to ask.
DISPUTE_REASON_HINT = re.compile(r"读数|抄表|电量|度数|偏高|太高|高了|多了|不对|有误|算错|重复|违约金|退补|电价|倍率")


def category(text: str, table: Table) -> str:
    """The first category of `table` whose pattern occurs in `text`, else ``other``."""
    for pattern, name in table:
        if pattern.search(text):
            return name
    return "other"


def dispute_category(reason: str) -> str:
    return category(reason, DISPUTE_CATEGORIES)


def complaint_category(description: str) -> str:
    return category(description, COMPLAINT_CATEGORIES)


def gives_dispute_reason(text: str) -> bool:
    """Whether `text` already says what is wrong with the bill."""
    return DISPUTE_REASON_HINT.search(text) is not None
