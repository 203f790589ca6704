"""The eval scenario format: one YAML file per scenario, validated into typed models.

A scenario is a tau2-style task: the database it starts from (`initial_state`), a customer who
knows some things and wants one (`user`), the channel, and what must hold at the end (`expect`).
Amounts are never typed in: bills are computed by the billing core from usage, and expected
facts name a bill field symbolically (`{bill: 2026-05, field: amount}`), resolved at judge time.
Loading errors name the file and the field, so a typo in scenario 57 does not cost a run.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SHANGHAI = timezone(timedelta(hours=8))
# Friday 2026-06-26 10:00 in Guangzhou: May bills issued, not yet due; April bills due 2026-06-15.
DEFAULT_NOW = datetime(2026, 6, 26, 10, 0, tzinfo=SHANGHAI)
PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CHANNELS = ("web", "wechat", "ivr")
SLOTS = ("account_no", "last4", "check_answer", "period", "reason", "description", "new_phone", "confirm", "csat",
         "choice", "remedy")
KNOWABLE = SLOTS[:7]  # what a customer can know; confirm/csat answers are `confirm` and `rating`, a
# clarifying question's `choice` only a scripted answer
# (and the yes/no to an offered remedy of a negative experience, `remedy`, only a scripted answer too)
# What `Reply.actions` may name: the tools, and the agent's own "cancel".
ACTIONS = ("verify_identity", "bind_wechat", "lookup_bill", "explain_bill", "payment_status", "open_dispute",
           "intake_complaint", "transfer_to_human", "search_knowledge_base", "contact_info", "change_contact_phone",
           "forecast_bill", "usage_insights", "saving_advice", "cancel")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _period(value: str) -> str:
    if not isinstance(value, str) or not PERIOD_RE.match(value):
        raise ValueError(f"{value!r} is not a month written YYYY-MM")
    return value


class UsageSpec(_Strict):
    """Energy of a bill's month, as the billing core takes it (`billing_core.bill_types.Usage`)."""

    total_kwh: Decimal | None = Field(default=None, ge=0)
    tou: dict[Literal["critical_peak", "peak", "flat", "valley"], Decimal] | None = None
    reactive_kvarh: Decimal | None = Field(default=None, ge=0)
    max_demand_kw: Decimal | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_energy(self) -> UsageSpec:
        if self.total_kwh is None and not self.tou:
            raise ValueError("give total_kwh or tou")
        return self


class PaymentSpec(_Strict):
    """A payment against a bill. `amount: full` pays the computed bill; a number is a part payment."""

    amount: Literal["full"] | Decimal = "full"
    channel: Literal["wechat_pay", "alipay", "bank_withholding", "counter", "prepaid",
                     "bank_transfer"] = "wechat_pay"
    paid_at: datetime | None = None  # default: five days before the due date, 10:00 local
    status: Literal["succeeded", "pending", "failed", "refunded"] = "succeeded"


class BillSpec(_Strict):
    """One month's bill, computed by `compute_bill` from `usage` when the world is built."""

    period: str
    usage: UsageSpec
    back_charge_kwh: Decimal = Decimal("0")
    status: Literal["issued", "computed", "held", "cancelled"] = "issued"  # paid follows from payments
    due_date: date | None = None  # default: the 15th of the second month after the period
    payments: list[PaymentSpec] = []

    @field_validator("period")
    @classmethod
    def _check_period(cls, value: str) -> str:
        return _period(value)


class MeterSpec(_Strict):
    """A meter at the customer (asset number, 综合倍率); bills still come from `usage`.

    With `daily_kwh` the world also writes one active-total end-of-day reading a day from
    `readings_from` up to the day before the scenario's `now` (what the insights tools read):
    the register advances `daily_kwh` ÷ multiplier a day from `first_reading`. `extra_kwh` adds
    kWh on given days (a spike for the usage-anomaly scenarios): later readings carry it too.
    `tou_shares` (峰/平/谷 … shares of each day's kWh) also writes the TOU registers, so that a
    time-of-use customer's advice can move peak kWh to the valley. `estimated_days` stores those
    days' readings with the estimated source (估抄), as the collection system marks a reading it
    could not deliver.
    """

    asset_no: str = Field(min_length=1, max_length=32)
    multiplier: Decimal = Field(default=Decimal("1"), gt=0)
    installed_on: date = date(2020, 1, 1)
    removed_on: date | None = None
    daily_kwh: Decimal | None = Field(default=None, ge=0)
    readings_from: date | None = None  # default: 400 days before the scenario's day
    first_reading: Decimal = Field(default=Decimal("1000"), ge=0)
    extra_kwh: dict[date, Decimal] = {}
    tou_shares: dict[Literal["critical_peak", "peak", "flat", "valley"], Decimal] | None = None
    estimated_days: list[date] = []  # readings of these days are stored as estimates (估抄)

    @field_validator("tou_shares")
    @classmethod
    def _shares(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        if value is not None and (sum(value.values()) != 1 or any(v < 0 for v in value.values())):
            raise ValueError("tou_shares must be non-negative and add up to 1")
        return value

    @model_validator(mode="after")
    def _estimates_need_readings(self) -> MeterSpec:
        if self.estimated_days and self.daily_kwh is None:
            raise ValueError("estimated_days: readings are written only with daily_kwh")
        return self


class CustomerSpec(_Strict):
    """One customer (户号) of the scenario's own small utility."""

    key: str = Field(min_length=1, max_length=16)  # how the scenario refers to them: "me", "neighbour"
    account_no: str
    name: str
    phone: str = Field(pattern=r"^1\d{10}$")
    id_last4: str = Field(pattern=r"^\d{3}[\dX]$")
    address: str
    category: Literal["residential", "ci_single", "ci_two_part", "agricultural"] = "residential"
    household_type: Literal["ordinary", "many_person", "shared_meter"] = "ordinary"
    residential_tou: bool = False
    voltage_level: str = "<1kV"
    purchase_mode: Literal["catalog", "agency", "market"] = "catalog"
    capacity_kva: Decimal | None = None
    basic_charge_mode: Literal["capacity", "demand"] | None = None
    contracted_demand_kw: Decimal | None = None
    pf_standard: Decimal | None = None
    wechat_openid: str | None = None
    withholding_agreement: bool = False
    meters: list[MeterSpec] = []
    bills: list[BillSpec] = []

    @field_validator("account_no")
    @classmethod
    def _account(cls, value: str) -> str:
        if not re.fullmatch(r"\d{12}", str(value)):
            raise ValueError(f"{value!r} is not a 12-digit 户号")
        return str(value)


class TicketSpec(_Strict):
    """A work order already open before the conversation (e.g. a dispute, to test duplicates)."""

    kind: Literal["dispute", "complaint"]
    customer: str  # a customer key
    period: str | None = None
    status: Literal["open", "in_progress", "resolved", "closed"] = "open"
    description: str = "客户此前提交的申请"
    category: str = "amount_too_high"


class PastConversationSpec(_Strict):
    """A conversation of the customer before this one (its record), e.g. to test a repeat contact."""

    customer: str  # a customer key
    topic: str  # the task intent it was about (agent_conversations.topic)
    days_ago: int = Field(default=2, ge=0, le=60)
    outcome: Literal["resolved", "ticket", "transferred", "abandoned"] = "resolved"
    channel: Literal["web", "wechat", "ivr"] = "web"


class PastHandoffSpec(_Strict):
    """A hand-off asked for earlier and still waiting (nobody took it)."""

    customer: str  # a customer key
    minutes_ago: int = Field(default=30, ge=0, le=7 * 24 * 60)
    channel: Literal["web", "wechat", "ivr"] = "web"


class InitialState(_Strict):
    now: datetime = DEFAULT_NOW
    customers: list[CustomerSpec] = Field(min_length=1)
    tickets: list[TicketSpec] = []
    past_conversations: list[PastConversationSpec] = []
    waiting_handoffs: list[PastHandoffSpec] = []

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("now must carry a time zone, e.g. 2026-06-26T10:00:00+08:00")
        return value

    @model_validator(mode="after")
    def _references(self) -> InitialState:
        keys = [c.key for c in self.customers]
        if len(set(keys)) != len(keys):
            raise ValueError("customers: two customers share a key")
        numbers = [c.account_no for c in self.customers]
        if len(set(numbers)) != len(numbers):
            raise ValueError("customers: two customers share an account_no")
        for index, ticket in enumerate(self.tickets):
            if ticket.customer not in keys:
                raise ValueError(f"tickets.{index}.customer: no customer with key {ticket.customer!r}")
        for name, items in (("past_conversations", self.past_conversations), ("waiting_handoffs", self.waiting_handoffs)):
            for index, item in enumerate(items):
                if item.customer not in keys:
                    raise ValueError(f"{name}.{index}.customer: no customer with key {item.customer!r}")
        return self


class UserSpec(_Strict):
    """The simulated customer: who they are, what they know, what they want, how they speak."""

    customer: str | None = None  # the customer key they are (None: a stranger)
    persona: str = "普通居民客户，说话简短"
    wants: str
    knows: dict[str, str] = {}  # account_no, last4, check_answer, period, reason, description…
    opening: str = Field(min_length=1)
    follow_ups: list[str] = []  # said, in order, when the agent is not asking for anything
    answers: dict[str, list[str]] = {}  # per awaited slot, answers given in order (then `knows`)
    confirm: str = "是"  # the answer to a read-back before a write
    rating: str = "满意"
    openid: str | None = None  # the WeChat envelope's openid (channel wechat)
    caller: str | None = None  # the hotline caller number (channel ivr)
    max_turns: int = Field(default=12, ge=1, le=40)

    @field_validator("knows")
    @classmethod
    def _known_slots(cls, value: dict[str, str]) -> dict[str, str]:
        for slot in value:
            if slot not in KNOWABLE:
                raise ValueError(f"knows.{slot}: unknown slot (known: {', '.join(KNOWABLE)})")
        return {k: str(v) for k, v in value.items()}

    @field_validator("answers")
    @classmethod
    def _answer_slots(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for slot in value:
            if slot not in SLOTS:
                raise ValueError(f"answers.{slot}: unknown slot (known: {', '.join(SLOTS)})")
        return {k: [str(x) for x in v] for k, v in value.items()}


class FactRef(_Strict):
    """A fact resolved from the built world, so no figure is hard-coded in a scenario.

    Exactly one of: `bill` (+ `field`: amount, total_kwh, due_date, bill_no, outstanding — the
    amount less the scenario's succeeded payments —, or `line` for a line's amount), `late_fee`
    (a period: the late fee to the scenario's today), `customer_field`
    (name, account_no, phone, address), or `ticket: new` (the number of the ticket opened) /
    `ticket: existing` (the pre-existing ticket's number).
    """

    customer: str | None = None  # default: the user's customer
    bill: str | None = None
    field: Literal["amount", "total_kwh", "due_date", "bill_no", "outstanding"] | None = None
    line: str | None = None  # a line code, e.g. pf_adjustment; the line's amount
    late_fee: str | None = None
    customer_field: Literal["name", "account_no", "phone", "address"] | None = None
    ticket: Literal["new", "existing"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> FactRef:
        kinds = [self.bill is not None, self.late_fee is not None, self.customer_field is not None,
                 self.ticket is not None]
        if sum(kinds) != 1:
            raise ValueError("give exactly one of bill, late_fee, customer_field, ticket")
        if self.bill is not None:
            _period(self.bill)
            if (self.field is None) == (self.line is None):
                raise ValueError("a bill fact needs exactly one of field or line")
        if self.late_fee is not None:
            _period(self.late_fee)
        return self


Fact = str | FactRef


class TicketExpect(_Strict):
    kind: Literal["dispute", "complaint"]
    customer: str | None = None  # default: the user's customer
    period: str | None = None
    category: str | None = None


class NegativeExpect(_Strict):
    """The conversation's 负面体验 record (agent.experience.negative): causes it must name, and the
    remedy offered and its answer (offered | accepted | declined | applied | pending)."""

    causes: list[str] = Field(min_length=1)
    remedy: str | None = None
    remedy_status: str | None = None


class Expect(_Strict):
    """End state and reply facts; the scenario succeeds only when every one holds."""

    outcome: Literal["resolved", "ticket", "transferred", "abandoned"] | None = None
    handoff: bool | None = None
    verified: bool | None = None  # whether the conversation ended verified as the user's customer
    new_tickets: list[TicketExpect] | None = None  # exactly these new tickets (None: not checked)
    bindings: dict[str, str | None] = {}  # openid → customer key (or None: not bound to anyone)
    payments_untouched: bool = True
    reply_contains: list[Fact] = []
    reply_not_contains: list[Fact] = []
    reply_contains_any: list[list[Fact]] = []  # each group: at least one of them appears
    # Article ids that must be cited; an entry may list equally good articles (any one counts).
    citations: list[str | list[str]] = []
    actions: list[str] = []  # tools that must have run successfully (as reported in Reply.actions)
    actions_absent: list[str] = []
    no_leaks: bool = True  # no other customer's name, 户号 or bill amount in any reply
    negative_experience: NegativeExpect | None = None  # the 负面体验 record the conversation must leave
    no_negative_experience: bool = False  # none must be recorded

    @field_validator("actions", "actions_absent")
    @classmethod
    def _known_actions(cls, value: list[str]) -> list[str]:
        for action in value:
            if action not in ACTIONS:
                raise ValueError(f"{action!r} is not an action (known: {', '.join(ACTIONS)})")
        return value


class Scenario(_Strict):
    id: str
    category: str
    description: str = ""
    channel: Literal["web", "wechat", "ivr"] = "web"
    brain: Literal["local", "llm"] | None = None
    initial_state: InitialState
    user: UserSpec
    expect: Expect
    path: str = ""

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        keys = {c.key for c in self.initial_state.customers}
        if self.user.customer is not None and self.user.customer not in keys:
            raise ValueError(f"user.customer: no customer with key {self.user.customer!r}")
        for index, ticket in enumerate(self.expect.new_tickets or []):
            if ticket.customer is not None and ticket.customer not in keys:
                raise ValueError(f"expect.new_tickets.{index}.customer: no customer {ticket.customer!r}")
        for openid, key in self.expect.bindings.items():
            if key is not None and key not in keys:
                raise ValueError(f"expect.bindings.{openid}: no customer {key!r}")
        facts = [*self.expect.reply_contains, *self.expect.reply_not_contains,
                 *(f for group in self.expect.reply_contains_any for f in group)]
        for fact in facts:
            if isinstance(fact, FactRef) and fact.customer is not None and fact.customer not in keys:
                raise ValueError(f"expect: fact refers to unknown customer {fact.customer!r}")
            if isinstance(fact, FactRef) and fact.customer is None and self.user.customer is None \
                    and fact.ticket is None:
                raise ValueError("expect: a fact without `customer` needs user.customer")
        return self


def _location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ())) or "(top level)"


def load_scenario(path: Path) -> Scenario:
    """One scenario file; `ScenarioError` names the file and the field on any problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario file must hold a mapping")
    raw.setdefault("id", path.stem)
    raw.setdefault("category", path.parent.name)
    raw["path"] = str(path)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{path}: {problems}") from exc


def load_scenarios(directory: Path) -> list[Scenario]:
    """Every `*.yaml` under `directory` (or one file), sorted by path; ids must be unique."""
    if directory.is_file():
        return [load_scenario(directory)]
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: no such scenario directory")
    files = sorted(directory.rglob("*.yaml"))
    if not files:
        raise ScenarioError(f"{directory}: holds no *.yaml scenario")
    scenarios = [load_scenario(p) for p in files]
    seen: dict[str, str] = {}
    for scenario in scenarios:
        if scenario.id in seen:
            raise ScenarioError(f"{scenario.path}: id {scenario.id!r} already used by {seen[scenario.id]}")
        seen[scenario.id] = scenario.path
    return scenarios


DEFAULT_DIR = Path(__file__).with_name("scenarios")
