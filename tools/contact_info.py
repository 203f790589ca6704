"""`contact_info` and `change_contact_phone`: what the verified customer has on file, and a new
contact phone for it.

Only masked figures leave the tool: the phone as 138****8000, the address up to its street (a
house number is enough to find someone). The change goes through the billing core
(`billing_core.operations.contact`); `call_tool` audits it with the number redacted, and the
result keeps the old and new numbers masked, so the record shows what changed without
disclosing either.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from billing_core.errors import BillingError
from billing_core.operations.contact import change_contact_phone as change_phone_in_core
from knowledge_base.personal_numbers import mask_personal_numbers
from tools.account_view import CustomerView
from tools.context import ToolContext
from tools.results import InvalidInput, ToolResult

# Up to and including the street: 「广州市天河区体育西路 1 号」 → 「广州市天河区体育西路」.
_STREET = re.compile(r"^(.*?(?:大道|路|街|道|巷|里|村|镇))")


def mask_phone(phone: str | None) -> str:
    if not phone:
        return "未登记"
    masked = mask_personal_numbers(phone)
    return masked if masked != phone else (phone[:3] + "****" + phone[-4:] if len(phone) > 7 else "****")


def street_of(address: str | None) -> str:
    if not address:
        return "未登记"
    match = _STREET.match(address.replace(" ", ""))
    return match.group(1) if match else "（地址未能按街道显示，请到营业厅核对）"


class ContactInfoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactInfo(ToolResult):
    status: Literal["ok"] = "ok"
    phone_masked: str
    address_street: str


def contact_info(ctx: ToolContext, session: Session, customer: CustomerView, args: ContactInfoInput) -> ToolResult:
    row = session.get(Customer, customer.id)
    address = row.address if row is not None else None
    phone, street = mask_phone(customer.phone), street_of(address)
    return ContactInfo(phone_masked=phone, address_street=street,
                       message=f"您户号登记的联系电话是 {phone}，用电地址是 {street}（门牌号不在对话中显示）。")


class ChangeContactPhoneInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_phone: str = Field(description="新的11位手机号码", json_schema_extra={"secret": True})


class ContactPhoneChanged(ToolResult):
    status: Literal["changed", "unchanged"]
    old_phone_masked: str
    new_phone_masked: str


def change_contact_phone(ctx: ToolContext, session: Session, customer: CustomerView,
                         args: ChangeContactPhoneInput) -> ToolResult:
    try:
        old, new = change_phone_in_core(session, customer.id, args.new_phone)
    except BillingError:
        session.rollback()
        return InvalidInput(field="new_phone", message="new_phone: 新号码需要是11位手机号码。")
    old_masked, new_masked = mask_phone(old), mask_phone(new)
    if old == new:
        session.rollback()
        return ContactPhoneChanged(status="unchanged", old_phone_masked=old_masked, new_phone_masked=new_masked,
                                   message=f"您登记的联系电话已经是 {new_masked}，无需修改。")
    session.commit()
    return ContactPhoneChanged(status="changed", old_phone_masked=old_masked, new_phone_masked=new_masked,
                               message=f"已将您登记的联系电话由 {old_masked} 改为 {new_masked}。以后核实身份请用新号码的后4位。")
