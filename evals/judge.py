"""Judge a finished conversation against the scenario's expectations, tau2-style.

Reward is 1 only when every expectation holds: the database end state (tickets, bindings,
payments), the facts that must (and must not) appear in the agent's replies, handoff and
outcome. Expected figures are resolved from the world the billing core built, so a scenario
stays right when a tariff changes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select

from billing_core.operations.dunning import late_fee
from billing_core.db.models import Customer, WorkOrder
from evals.scenario import SHANGHAI, Fact, FactRef, TicketExpect
from evals.world import World, payments_snapshot
from tools.models import HandoffRequest
from tools.registry import CONFIRMED_TOOLS


@dataclass
class TurnLog:
    """One exchange: what the simulated user said and what the agent answered."""

    user: str
    reply: dict[str, Any]
    latency_ms: float


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))


def money_text(value: Decimal) -> str:
    """How the agent writes an amount (the billing core's value to the fen)."""
    return format(value.quantize(Decimal("0.01")), "f")


def kwh_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != value.to_integral_value() else format(
        value.quantize(Decimal(1)), "f")


def date_text(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


class FactError(LookupError):
    """A fact refers to something the world does not hold (a scenario bug, reported as such)."""


def resolve_fact(world: World, fact: Fact, user_key: str | None, new_tickets: list[str]) -> list[str]:
    """The text forms of a fact; any of them appearing in a reply counts."""
    if isinstance(fact, str):
        return [fact]
    assert isinstance(fact, FactRef)
    if fact.ticket == "new":
        if not new_tickets:
            raise FactError("no new ticket was opened")
        return list(new_tickets)
    if fact.ticket == "existing":
        if not world.existing_tickets:
            raise FactError("the scenario has no pre-existing ticket")
        return list(world.existing_tickets)
    key = fact.customer or user_key
    assert key is not None
    customer = world.customers[key]
    if fact.customer_field is not None:
        return [str(getattr(customer, fact.customer_field))]
    period = fact.bill or fact.late_fee
    built = world.bills.get((key, period or ""))
    if built is None:
        raise FactError(f"customer {key} has no bill for {period}")
    bill = built.computed
    if fact.late_fee is not None:
        today = world.now.astimezone(SHANGHAI).date()
        fee = late_fee(bill.total, built.due_date, today, customer.category)
        return [money_text(fee.amount)]
    if fact.line is not None:
        lines = [line for line in bill.lines if line.code == fact.line]
        if not lines:
            raise FactError(f"bill {key}:{period} has no line {fact.line!r}")
        return [money_text(sum((line.amount for line in lines), Decimal("0")))]
    if fact.field == "amount":
        return [money_text(bill.total)]
    if fact.field == "outstanding":
        spec = next(b for b in customer.bills if b.period == period)
        paid = sum((bill.total if p.amount == "full" else Decimal(p.amount)
                    for p in spec.payments if p.status == "succeeded"), Decimal("0"))
        return [money_text(max(bill.total - paid, Decimal("0")))]
    if fact.field == "total_kwh":
        return [kwh_text(bill.total_kwh)]
    if fact.field == "due_date":
        return [date_text(built.due_date), built.due_date.isoformat()]
    return [built.bill_no]


def _fact_label(fact: Fact) -> str:
    if isinstance(fact, str):
        return fact
    return ",".join(f"{k}={v}" for k, v in fact.model_dump(exclude_none=True).items())


def new_work_orders(world: World) -> list[WorkOrder]:
    with world.sessions() as session:
        rows = session.scalars(select(WorkOrder).order_by(WorkOrder.id))
        return [row for row in rows if row.no not in world.existing_tickets]


def _ticket_matches(world: World, expected: TicketExpect, order: WorkOrder, user_key: str | None) -> bool:
    key = expected.customer or user_key
    account = world.customers[key].account_no if key else None
    category = (order.payload or {}).get("category")
    return (order.kind.value == expected.kind and order.account_no == account
            and (expected.period is None or order.period == expected.period)
            and (expected.category is None or category == expected.category))


def leak_candidates(world: World, user_key: str | None) -> dict[str, str]:
    """Other customers' names, 户号 and bill amounts (text → what it is), minus anything the
    user's own facts share (an equal amount on the user's own bill is not a leak)."""
    own: set[str] = set()
    if user_key is not None:
        me = world.customers[user_key]
        own |= {me.name, me.account_no}
        own |= {money_text(b.computed.total) for (k, _), b in world.bills.items() if k == user_key}
    candidates: dict[str, str] = {}
    for key, customer in world.customers.items():
        if key == user_key:
            continue
        candidates[customer.name] = f"{key}.name"
        candidates[customer.account_no] = f"{key}.account_no"
    for (key, period), built in world.bills.items():
        if key != user_key:
            candidates[money_text(built.computed.total)] = f"{key}.bill {period} amount"
    return {text: what for text, what in candidates.items() if text not in own}


def judge(world: World, turns: list[TurnLog], final_state: Any) -> Verdict:
    """Every expectation of the scenario, checked against the end of the conversation."""
    scenario = world.scenario
    expect, user_key = scenario.expect, scenario.user.customer
    verdict = Verdict()
    replies = [t.reply for t in turns]
    texts = "\n".join(r.get("text", "") for r in replies)
    orders = new_work_orders(world)
    new_numbers = [o.no for o in orders]

    if expect.outcome is not None:
        outcome = replies[-1].get("outcome") if replies else None
        verdict.add("outcome", outcome == expect.outcome, f"expected {expect.outcome}, got {outcome}")
    if expect.handoff is not None:
        handed = any(r.get("handoff") for r in replies)
        verdict.add("handoff", handed == expect.handoff, f"expected handoff={expect.handoff}, got {handed}")
        # End state too: a hand-off the customer was told about is a request a person can pick up.
        with world.sessions() as session:
            requests = session.scalar(select(func.count()).select_from(HandoffRequest)) or 0
        verdict.add("handoff_request", (requests > 0) == expect.handoff,
                    f"expected a hand-off request={expect.handoff}, found {requests}")
    if expect.verified is not None:
        account = world.customers[user_key].account_no if user_key else None
        verified = bool(final_state is not None and getattr(final_state, "verified", False)
                        and getattr(final_state, "account_no", None) == account)
        verdict.add("verified", verified == expect.verified,
                    f"expected verified={expect.verified}, got {verified}")
    if expect.new_tickets is not None:
        remaining = list(orders)
        missing: list[str] = []
        for wanted in expect.new_tickets:
            match = next((o for o in remaining if _ticket_matches(world, wanted, o, user_key)), None)
            if match is None:
                missing.append(f"{wanted.kind}/{wanted.period or '-'}/{wanted.category or '-'}")
            else:
                remaining.remove(match)
        extra = [f"{o.kind.value}/{o.period}/{(o.payload or {}).get('category')}" for o in remaining]
        verdict.add("new_tickets", not missing and not extra, f"missing {missing}, unexpected {extra}")
    # Policy: a write the registry marks for confirmation (dispute, complaint, contact phone change)
    # only after the agent read it back and the customer said yes.
    wrote = next((i for i, r in enumerate(replies) if CONFIRMED_TOOLS & set(r.get("actions") or [])), None)
    if orders or wrote is not None:
        asked = wrote is not None and any(r.get("awaiting") == "confirm" for r in replies[:wrote])
        verdict.add("confirmed_before_write", asked,
                    "a ticket was opened or a write made without a read-back the customer confirmed")
    if expect.bindings:
        with world.sessions() as session:
            for openid, key in expect.bindings.items():
                bound = session.scalar(select(Customer.account_no).where(Customer.wechat_openid == openid))
                wanted = world.customers[key].account_no if key else None
                verdict.add(f"binding {openid}", bound == wanted, f"expected {wanted}, got {bound}")
    if expect.payments_untouched:
        with world.sessions() as session:
            after = payments_snapshot(session)
        verdict.add("payments_untouched", after == world.payments_before, "payments changed")
    for fact in expect.reply_contains:
        _contains(verdict, world, fact, user_key, new_numbers, texts)
    for group in expect.reply_contains_any:
        forms: list[str] = []
        for fact in group:
            try:
                forms += resolve_fact(world, fact, user_key, new_numbers)
            except FactError:
                continue
        verdict.add(f"reply contains one of {[_fact_label(f) for f in group]}",
                    any(f in texts for f in forms),
                    f"none of {forms}")
    for fact in expect.reply_not_contains:
        try:
            forms = resolve_fact(world, fact, user_key, new_numbers)
        except FactError as exc:
            verdict.add(f"reply lacks {_fact_label(fact)}", False, f"scenario fact: {exc}")
            continue
        present = [f for f in forms if f in texts]
        verdict.add(f"reply lacks {_fact_label(fact)}", not present, f"found {present}")
    cited = {c.get("article_id") for r in replies for c in r.get("citations") or []}
    for entry in expect.citations:
        accepted = [entry] if isinstance(entry, str) else list(entry)
        verdict.add(f"cites {' | '.join(accepted)}", any(a in cited for a in accepted),
                    f"cited {sorted(a for a in cited if a)}")
    actions = Counter(a for r in replies for a in r.get("actions") or [])
    for action in expect.actions:
        verdict.add(f"action {action}", actions[action] > 0, f"actions {dict(actions)}")
    for action in expect.actions_absent:
        verdict.add(f"no action {action}", actions[action] == 0, f"actions {dict(actions)}")
    if expect.negative_experience is not None or expect.no_negative_experience:
        _negative_experience(verdict, world, expect)
    # A figure the customer typed themselves (e.g. the 户号 they asked about) is not disclosed by echoing it.
    said = "\n".join(t.user for t in turns)
    verdict.leaks = sorted({what for text, what in leak_candidates(world, user_key).items()
                            if text in texts and text not in said})
    if expect.no_leaks:
        verdict.add("no_leaks", not verdict.leaks, f"leaked {verdict.leaks}")
    return verdict


def _negative_experience(verdict: Verdict, world: World, expect: Any) -> None:
    """The 负面体验 records the conversation left (a scenario is one conversation)."""
    from agent.experience.negative.models import NegativeExperience

    with world.sessions() as session:
        rows = list(session.scalars(select(NegativeExperience)))
    if expect.no_negative_experience:
        verdict.add("no negative experience", not rows, f"recorded {[r.causes for r in rows]}")
        return
    wanted = expect.negative_experience
    row = rows[0] if len(rows) == 1 else None
    verdict.add("negative experience", row is not None and set(wanted.causes) <= set(row.causes),
                f"expected causes {wanted.causes}, recorded {[r.causes for r in rows]}")
    if row is not None and wanted.remedy is not None:
        verdict.add("negative remedy", row.remedy == wanted.remedy, f"expected {wanted.remedy}, got {row.remedy}")
    if row is not None and wanted.remedy_status is not None:
        verdict.add("negative remedy status", row.remedy_status == wanted.remedy_status,
                    f"expected {wanted.remedy_status}, got {row.remedy_status}")


def _contains(verdict: Verdict, world: World, fact: Fact, user_key: str | None, new_numbers: list[str],
              texts: str) -> None:
    label = f"reply contains {_fact_label(fact)}"
    try:
        forms = resolve_fact(world, fact, user_key, new_numbers)
    except FactError as exc:
        verdict.add(label, False, str(exc))
        return
    verdict.add(label, any(f in texts for f in forms), f"none of {forms}")


@lru_cache(maxsize=1)
def _article_bodies() -> dict[str, str]:
    from knowledge_base.articles import load_articles

    return {a.id: a.body for a in load_articles().articles}


@lru_cache(maxsize=1)
def _remedy_policy_text() -> str:
    from agent.experience.negative.policy import POLICY_FILE

    return POLICY_FILE.read_text(encoding="utf-8")


def ungrounded_figures(turns: list[TurnLog], tool_results: list[list[Any]]) -> list[str]:
    """Figures in replies that no tool result of the turn, cited article, template or user message
    backs (the guard should make this empty; the eval checks it independently)."""
    from agent.grounding import check_reply, evidence_from
    from agent.replies import templates

    # The promised hours of a remedy (「24小时内联系您」) are the remedies policy's, like a template's wording.
    fixed = [t.text for t in templates().values()] + [_remedy_policy_text()]
    bodies = _article_bodies()
    found: list[str] = []
    for index, turn in enumerate(turns):
        cited = [bodies.get(c.get("article_id"), "") for c in turn.reply.get("citations") or []]
        users = [t.user for t in turns[: index + 1]]
        results = tool_results[index] if index < len(tool_results) else []
        evidence = evidence_from(tool_results=results, passages=[*cited, *fixed], user_messages=users)
        found += [v.text for v in check_reply(turn.reply.get("text", ""), evidence).violations]
    return found
