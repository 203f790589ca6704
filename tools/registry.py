"""Every tool in one list: name, description, input and output types, whether it needs a
verified customer, whether it writes, and what the customer confirms before it runs. `call_tool`
is the one way in (validation, authorisation, audit); the LangChain and Rasa adapters and the
LLM brain's interrupt are built from this list, so they agree.

`writes`: the tool changes stored state beyond its own audit row (a ticket, a hand-off, the
contact phone, a WeChat binding, and `verify_identity`'s verified session and failed attempts).
`tests/tools/test_tool_effects.py` calls every tool on a real database and fails when a tool
changes rows it does not declare, or declares a write it does not make. `confirm_as`: the
read-back of a write the customer must confirm with 「是」 first (the LLM brain stops at such a
call and the dialogue engine runs it on the answer); a write without it (`transfer_to_human`,
`verify_identity`) runs when called.

`needs_principal` is enforced here, not in each tool: an account tool is written as
`(ctx, session, customer, args)` and `call_tool` runs it through
`tools.authorize.for_verified_customer` (no principal → `needs_verification`, else the verified
customer's row). Other tools are `(ctx, args)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from tools.audit import audited_call
from tools.authorize import PlainTool, for_verified_customer
from tools.bind_wechat import BindWechatInput, bind_wechat
from tools.contact_info import ChangeContactPhoneInput, ContactInfoInput, change_contact_phone, contact_info
from tools.context import ToolContext
from tools.explain_bill import ExplainBillInput, explain_bill
from tools.insights import (
    ForecastBillInput,
    SavingAdviceInput,
    UsageInsightsInput,
    forecast_bill,
    saving_advice,
    usage_insights,
)
from tools.intake_complaint import IntakeComplaintInput, intake_complaint
from tools.lookup_bill import LookupBillInput, lookup_bill
from tools.open_dispute import OpenDisputeInput, open_dispute
from tools.payment_status import PaymentStatusInput, payment_status
from tools.results import ToolResult
from tools.search_knowledge_base import SearchKnowledgeBaseInput, search_knowledge_base
from tools.transfer_to_human import TransferToHumanInput, transfer_to_human
from tools.verify_identity import VerifyIdentityInput, verify_identity


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_model: type[BaseModel]
    # (ctx, session, customer, args) when `needs_principal`, else (ctx, args)
    func: Callable[..., ToolResult]
    needs_principal: bool
    writes: bool  # changes stored state beyond its audit row (checked against a real database in tests)
    # what the customer confirms before the write runs (「登记投诉工单」); None: it runs when called
    confirm_as: str | None = None
    run: PlainTool = field(init=False, repr=False, compare=False)  # (ctx, args), authorised

    def __post_init__(self) -> None:
        if self.confirm_as is not None and not self.writes:
            raise ValueError(f"{self.name}: confirm_as is for a tool that writes")
        object.__setattr__(self, "run", for_verified_customer(self.func) if self.needs_principal else self.func)

    @property
    def confirms(self) -> bool:
        """The customer must say 「是」 to a read-back before this write runs."""
        return self.confirm_as is not None


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("verify_identity",
             "核实客户身份：户号+登记手机号或身份证后4位；已绑定的微信；热线来电号码+用电地址所在道路。"
             "查询或办理任何账户业务前必须先核实。",
             VerifyIdentityInput, verify_identity, needs_principal=False, writes=True),
    ToolSpec("bind_wechat", "把当前微信绑定到已核实的户号（仅微信渠道）。",
             BindWechatInput, bind_wechat, needs_principal=True, writes=True,
             confirm_as="把当前微信绑定到您的户号"),
    ToolSpec("lookup_bill", "查询已核实客户的账单：指定月份或最近几期的电费、电量、截止日、缴费状态、欠费。",
             LookupBillInput, lookup_bill, needs_principal=True, writes=False),
    ToolSpec("explain_bill",
             "解释已核实客户某期账单的每一项费用，以及与上月、去年同期相比变化的原因（电量、阶梯、夏季/非夏季、"
             "天数、电价版本、退补、力调、违约金）。",
             ExplainBillInput, explain_bill, needs_principal=True, writes=False),
    ToolSpec("forecast_bill",
             "已核实客户本月截至昨日的用电量和已发生电费，以及全月用电和电费预测（含区间），金额由计费引擎计算。",
             ForecastBillInput, forecast_bill, needs_principal=True, writes=False),
    ToolSpec("usage_insights",
             "已核实客户的用电分析：近一个月用电异常提醒（某天/某周明显偏高、有人居住却连续零电量、示数倒走）、"
             "本月预测，代理购电/市场化用户的电费预测与偏差预警。",
             UsageInsightsInput, usage_insights, needs_principal=True, writes=False),
    ToolSpec("saving_advice",
             "已核实客户的节电省钱建议：距下一阶梯还剩多少电量、峰谷转移、提高功率因数、基本电费按容量或需量，"
             "每项节省金额由计费引擎对比计算并列出依据的电价。",
             SavingAdviceInput, saving_advice, needs_principal=True, writes=False),
    ToolSpec("payment_status", "查询已核实客户某期账单是否缴清、缴费渠道和时间、逾期违约金、缴费方式。",
             PaymentStatusInput, payment_status, needs_principal=True, writes=False),
    ToolSpec("open_dispute", "为已核实客户的某期账单登记电费异议工单（先向客户确认），返回工单号和答复时限。",
             OpenDisputeInput, open_dispute, needs_principal=True, writes=True,
             confirm_as="提交电费核查申请（异议工单）"),
    ToolSpec("intake_complaint", "为已核实客户登记投诉工单（先向客户确认），返回工单号和联系、答复时限。",
             IntakeComplaintInput, intake_complaint, needs_principal=True, writes=True,
             confirm_as="登记投诉工单"),
    ToolSpec("contact_info", "查询已核实客户登记的联系电话（打码）和用电地址（到街道）。",
             ContactInfoInput, contact_info, needs_principal=True, writes=False),
    ToolSpec("change_contact_phone", "把已核实客户登记的联系电话改为新的11位手机号（先向客户读回确认），留有审计记录。",
             ChangeContactPhoneInput, change_contact_phone, needs_principal=True, writes=True,
             confirm_as="修改登记的联系电话"),
    ToolSpec("transfer_to_human", "转人工客服，附上给人工的对话小结。",
             TransferToHumanInput, transfer_to_human, needs_principal=False, writes=True),
    ToolSpec("search_knowledge_base",
             "检索知识库（电价政策、账单解读、缴费、违约金、异议、投诉、隐私、户务、渠道），返回段落及出处；"
             "不能用于查询客户本人的账单金额。",
             SearchKnowledgeBaseInput, search_knowledge_base, needs_principal=False, writes=False),
)
BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in TOOLS}
WRITE_TOOLS: frozenset[str] = frozenset(spec.name for spec in TOOLS if spec.writes)
CONFIRMED_TOOLS: frozenset[str] = frozenset(spec.name for spec in TOOLS if spec.confirms)


def get_tool(name: str) -> ToolSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown tool {name!r}; known: {', '.join(BY_NAME)}") from None


def call_tool(ctx: ToolContext, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
    """Run tool `name` for the conversation in `ctx` (validated, authorized by ctx, audited)."""
    spec = get_tool(name)
    return audited_call(ctx, spec.name, spec.input_model, spec.run, dict(arguments or {}))
