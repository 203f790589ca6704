"""`bind_wechat`: bind the conversation's WeChat openid to the verified account.

Only after verification, only on the WeChat channel, and only the openid WeChat itself put on
the message (never one typed by the user). An openid bound to another account, or an account
bound to another WeChat, is refused: unbinding is a separate, deliberate step (knowledge-base
article account-unbind-wechat).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from tools.account_view import CustomerView
from tools.context import ToolContext
from tools.models import VerificationMethod
from tools.results import InvalidInput, ToolResult


class BindWechatInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WechatBound(ToolResult):
    status: Literal["bound", "already_bound"]
    account_no: str


class BindingRefused(ToolResult):
    status: Literal["refused"] = "refused"


def bind_wechat(ctx: ToolContext, session: Session, customer: CustomerView,
                args: BindWechatInput) -> ToolResult:
    if not ctx.allows(VerificationMethod.WECHAT_OPENID):
        return InvalidInput(field="channel", message="channel: 只能在微信服务号里绑定当前微信")
    openid = ctx.channel_identity
    account = session.get(Customer, customer.id)  # `customer` is a read-only view: load the model to change it
    assert account is not None  # the same session just read it
    if account.wechat_openid == openid:
        return WechatBound(status="already_bound", account_no=account.account_no,
                           message=f"您的微信已绑定户号 {account.account_no}，无需重复绑定。")
    other = session.scalar(select(Customer).where(Customer.wechat_openid == openid))
    if other is not None:
        return BindingRefused(message="当前微信已绑定另一个户号，请先在服务号里解绑后再绑定。")
    if account.wechat_openid is not None:
        return BindingRefused(message="该户号已绑定另一个微信，请先用原微信解绑，或联系人工客服办理。")
    account.wechat_openid = openid
    session.commit()
    return WechatBound(status="bound", account_no=account.account_no,
                       message=f"已将当前微信绑定户号 {account.account_no}，以后用这个微信咨询可以直接查询账单。")
