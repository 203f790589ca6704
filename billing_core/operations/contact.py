"""A customer's contact phone: the one billing-core way to change `customers.phone`.

The phone is also a verification secret (its last 4 digits), so the number is checked as a
mainland mobile number and the old one is returned for the caller's record of the change.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from billing_core.errors import InvalidRequestError, UnknownAccountError

MOBILE = re.compile(r"^1[3-9][0-9]{9}$")


def normalise_mobile(text: str) -> str:
    """「139 1234 5678」「+86-13912345678」 → 「13912345678」; raises when it is not a mobile number."""
    digits = re.sub(r"[\s\-()（）]", "", text)
    digits = re.sub(r"^(?:\+?86)", "", digits)
    if not MOBILE.match(digits):
        raise InvalidRequestError("必须是11位手机号码（1开头）", field="phone")
    return digits


def change_contact_phone(session: Session, customer_id: int, phone: str) -> tuple[str, str]:
    """Set the customer's contact phone; returns (old, new). The caller commits."""
    new = normalise_mobile(phone)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise UnknownAccountError("没有这个客户", field="customer_id")
    old = customer.phone or ""
    customer.phone = new
    return old, new
