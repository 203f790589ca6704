"""The local brain: flows with slot filling, confirmation before writes, conversation repair.

No network, no model calls: intents and entities come from `agent.nlu`, every figure in a reply
comes from a template slot filled with a tool result or a cited passage. A reply that asks for
something says which slot it awaits (`Rendered.awaiting`), so channels and simulated users know
what to answer. Writes (dispute, complaint) are read back and run only after a clear "是".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from agent.models import Outcome
from agent.records import CsatError, parse_csat
from agent.replies import format_value, period_text, render
from agent.state import PendingAction
from agent.turn import Turn
from tools.models import VerificationMethod

# Task intents and what they need.
NEEDS_IDENTITY = frozenset({"lookup_bill", "explain_bill", "payment_status", "overdue_late_fee",
                            "open_dispute", "complaint"})
KB_TASKS = frozenset({"policy_question", "how_to_pay"})
TASKS = NEEDS_IDENTITY | KB_TASKS
HANDOFF_INTENTS = {"transfer_to_human": "customer_asked", "outage_report": "out_of_scope",
                   "new_connection": "out_of_scope"}
OUT_OF_SCOPE_ADVICE = {"outage_report": "停电抢修、用电安全问题请直接拨打95598。",
                       "new_connection": "新装、增容、过户等业务可通过南网在线或到营业厅办理。"}
FREE_TEXT_SLOTS = frozenset({"reason", "description", "check_answer"})
KB_CANDIDATES = 5  # passages fetched for a policy question; the best-titled one answers
UNPAID_LOOKBACK = 12  # bills checked for arrears when the customer names no month
MAX_UNCLEAR = 3  # consecutive misunderstandings before a person takes over
_CSAT_LEVELS: dict[str, int] = {"satisfied": 4, "neutral": 3, "dissatisfied": 2}  # 满意 / 一般 / 不满意 on 1–5

_AFFIRM = re.compile(r"^\s*(是|是的|对|对的|好|好的|确认|确定|可以|行|嗯|没问题|同意|提交吧?|办理吧?)[。！!，,.\s]*$")
_DENY = re.compile(r"^\s*(否|不|不是|不用|不要|算了|取消|先不|不办了?)[。！!，,.\s]*$")
_ACCOUNT = re.compile(r"(?<![0-9])([0-9]{12})(?![0-9])")
_LAST4 = re.compile(r"(?:后\s*[4四]\s*位|尾号)\s*(?:是|为|:|：)?\s*([0-9]{3}[0-9Xx])(?![0-9])")
_ONLY_LAST4 = re.compile(r"^\D*?([0-9]{3}[0-9Xx])\D*$")
_TAIL_DIGITS = re.compile(r"^[0-9]{3}[0-9Xx]$")
_PERIOD = re.compile(r"(20[0-9]{2})\s*(?:年|-|/)\s*([01]?[0-9])(?:\s*月)?")

DISPUTE_CATEGORIES = (
    (re.compile(r"重复|扣了两次|交了两次|多扣"), "duplicate_payment"),
    (re.compile(r"违约金|滞纳金"), "late_fee"),
    (re.compile(r"退补|补收|追补"), "back_charge"),
    (re.compile(r"读数|抄表|电量|度数|表不准|电表"), "reading_wrong"),
    (re.compile(r"电价|类别|倍率|单价"), "tariff_wrong"),
    (re.compile(r"高|多|贵|不对|有误|错"), "amount_too_high"),
)
COMPLAINT_CATEGORIES = (
    (re.compile(r"态度|骂|凶|不耐烦|没礼貌"), "service_attitude"),
    (re.compile(r"拖|慢|一直没|没人管|没处理|推诿"), "delay"),
    (re.compile(r"核查结果|异议|处理结果"), "dispute_handling"),
    (re.compile(r"承诺|答应|说好"), "promise_broken"),
    (re.compile(r"算错|电费错|多收|乱收"), "billing_error"),
)
# A general "how / what / how long / will it" question about rules or procedures ...
_GENERAL_QUESTION = re.compile(
    r"(?:怎么|怎样|如何)(?:算|计算|收|申请|办|办理|绑定|查|处理|退)|怎么办|多久|多长时间|几个?工作日|是什么|什么是|"
    r"什么叫|为什么要|为啥要|去哪|哪里|在哪|哪些|会不会|会被.{0,6}吗|能不能退|规定|标准是")
# ... unless it is about the customer's own bill or payment (then it is an account task).
_ABOUT_MY_ACCOUNT = re.compile(
    r"我家|我们|我的?(?:[0-9一二三四五六七八九十]+月|这期|本期|账单)|我.{0,4}(?:欠了|没交|忘交|交了没|逾期了)|"
    r"我(?:要|想)|我.{0,8}要(?:申请|办)|本期|这期|这个月|上个月|上上个月|帮我|给我查|查一下|查下|有没有欠|欠了多少|要交多少|多少钱")
# Intents a general question overrides: the question is answered from the knowledge base instead.
_GENERAL_OVERRIDABLE = frozenset({"lookup_bill", "explain_bill", "payment_status", "overdue_late_fee",
                                  "open_dispute", "complaint", "provide_identity", "new_connection",
                                  "policy_question", "how_to_pay"})
_DISPUTE_REASON_HINT = re.compile(r"读数|抄表|电量|度数|偏高|太高|高了|多了|不对|有误|算错|重复|违约金|退补|电价|倍率")
_COMPLAINT_MIN_CHARS = 10


def _category(text: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    for pattern, category in table:
        if pattern.search(text):
            return category
    return "other"


class LocalBrain:
    """Deterministic dialogue policy over the tools."""

    name = "local"

    @staticmethod
    def preload() -> None:
        """Read what the first answers would otherwise load (the articles' sections, ~0.5 s), so that
        no customer's turn pays for it — on the event loop it would hold up every other turn."""
        _article_sections()

    # ------------------------------------------------------------ entry point
    def respond(self, turn: Turn) -> None:
        turn.parsed.intents = self._general_question(turn)
        state, intents = turn.state, turn.parsed.intents
        foreign = self._absorb(turn)
        if state.awaiting == "csat" and self._csat(turn):
            return
        if "prompt_injection" in intents:
            turn.say(render("prompt_injection"))
            return
        if foreign or "other_account" in intents:
            turn.say(render("other_account"))
            return
        if state.pending is not None and self._confirmation(turn):
            return
        if "cancel" in intents or (state.flow and _DENY.match(turn.text)):
            self._cancel(turn)
            return
        for intent in intents:
            if intent in HANDOFF_INTENTS:
                self._handoff(turn, intent)
                return
        if state.flow and state.awaiting in FREE_TEXT_SLOTS:
            self._run_flows(turn)  # the message is the answer (a reason, a description), not a new task
            return
        tasks = [i for i in dict.fromkeys(intents) if i in TASKS]
        if "correction" in intents and not tasks and state.slots.get("last_flow") and not state.flow:
            tasks = [state.slots["last_flow"]]
            turn.say(render("corrected"))
        if tasks:
            state.slots["unclear"] = 0
            verifying = state.awaiting in ("account_no", "last4", "check_answer")
            if state.flow and state.flow not in tasks and verifying:
                tasks = [state.flow, *tasks]  # verification in progress: keep the waiting task first
            state.flow, state.queue = tasks[0], [t for t in tasks[1:] if t != tasks[0]]
            state.slots["trigger_text"] = turn.text
            self._run_flows(turn)
            return
        if state.flow:  # an answer to the slot we asked for
            self._run_flows(turn)
            return
        if "rate_satisfaction" in intents and self._csat(turn):
            return
        if "goodbye_thanks" in intents:
            self._goodbye(turn)
            return
        if "greeting" in intents:
            turn.say(render("greeting"))
            return
        if "chitchat" in intents:
            turn.say(render("chitchat"))
            return
        identity_given = bool(state.slots.get("account_no") or state.slots.get("last4"))
        if not state.verified and ("provide_identity" in intents or identity_given
                                   or state.awaiting in ("account_no", "last4", "check_answer")):
            if self._ensure_verified(turn):  # verify now; the task comes next
                turn.say(render("ask_more"))
            return
        if "provide_identity" in intents and state.verified:
            turn.say(render("ask_more"))
            return
        self._unclear(turn)

    def _general_question(self, turn: Turn) -> list[str]:
        """Intents with a general rules/procedure question routed to the knowledge base.

        「违约金怎么算」「欠费会停电吗」「微信怎么绑定户号」 ask how things work, not about this
        customer's bill: they get a cited article and need no verification. A question that names
        the customer's own bill (a month, 这期, 我家, 帮我查 …) stays an account task.
        """
        intents, state = list(turn.parsed.intents), turn.state
        if state.pending is not None or (state.flow and state.awaiting in FREE_TEXT_SLOTS):
            return intents  # the message answers what we asked
        if turn.parsed.entities.get("period") or turn.parsed.entities.get("account_no"):
            return intents
        text = turn.text
        if not _GENERAL_QUESTION.search(text) or _ABOUT_MY_ACCOUNT.search(text):
            return intents
        if any(i not in _GENERAL_OVERRIDABLE and i not in ("greeting", "chitchat") for i in intents):
            return intents  # e.g. a hand-off request, an injection, someone else's account
        kept = [i for i in intents if i not in _GENERAL_OVERRIDABLE]
        return [*kept, "how_to_pay" if intents == ["how_to_pay"] else "policy_question"]

    # ------------------------------------------------------------ slots
    def _absorb(self, turn: Turn) -> bool:
        """Fill slots from entities and from the answer to the awaited slot.

        Returns True when the message names an account other than the verified one.
        """
        state, entities, text = turn.state, turn.parsed.entities, turn.text
        account = entities.get("account_no")
        if not account:
            match = _ACCOUNT.search(text)
            account = match.group(1) if match else None
        foreign = False
        if account:
            if state.verified and account != state.account_no:
                foreign = True
            elif not state.verified:
                state.slots["account_no"] = account
        last4 = entities.get("last4")
        if not last4:
            match = _LAST4.search(text)
            if match is None and state.awaiting in ("last4", "account_no"):
                rest = _ACCOUNT.sub(" ", text)
                match = _ONLY_LAST4.match(rest)
            last4 = match.group(1) if match else None
        spoken = str(entities.get("digits") or "")
        if not last4 and state.awaiting in ("last4", "account_no", "check_answer") and _TAIL_DIGITS.match(spoken):
            last4 = spoken  # the hotline's ASR writes the tail as words: 「八零零零」「幺三五七」
        if last4 and not state.verified:
            state.slots["last4"] = str(last4).upper()
        period = entities.get("period")
        if not period:
            match = _PERIOD.search(text)
            if match and 1 <= int(match.group(2)) <= 12:
                period = f"{match.group(1)}-{int(match.group(2)):02d}"
        if period:
            state.slots["period"] = period
            state.slots.pop("latest", None)
        elif entities.get("latest"):
            state.slots["latest"] = int(entities["latest"])
            state.slots.pop("period", None)
        if state.awaiting == "check_answer":
            state.slots["check_answer"] = str(last4).upper() if last4 else text.strip()
        if state.awaiting == "reason" and not _DENY.match(text):
            state.slots["reason"] = text.strip()
        if state.awaiting == "description" and not _DENY.match(text):
            state.slots["description"] = text.strip()
        return foreign

    # ------------------------------------------------------------ identity
    def _ensure_verified(self, turn: Turn) -> bool:
        state, box = turn.state, turn.toolbox
        ctx = box.ctx
        if state.verified and ctx.verified() is not None:
            return True
        state.verified = False
        if ctx.allows(VerificationMethod.WECHAT_OPENID) and not state.slots.get("wechat_tried"):
            state.slots["wechat_tried"] = True
            result = box.call("verify_identity", {"method": "wechat_openid"})
            if result.status == "verified":
                asked_for = state.slots.get("account_no")
                self._verified(turn, result)
                if asked_for and asked_for != result.account_no:
                    # The bound WeChat proves only its own account: never serve another one.
                    turn.say(render("other_account"))
                    state.flow, state.queue = None, []
                    return False
                return True
        if ctx.allows(VerificationMethod.HOTLINE) and not state.slots.get("ivr_failed"):
            answer = state.slots.pop("check_answer", None)
            if not answer:
                turn.say(render("ask_check_answer"))
                return False
            arguments: dict[str, Any] = {"method": "hotline", "check_answer": answer}
            if state.slots.get("account_no"):
                arguments["account_no"] = state.slots["account_no"]
            return self._verification_result(turn, box.call("verify_identity", arguments), hotline=True)
        if not state.slots.get("account_no"):
            turn.say(render("ask_account"))
            return False
        if not state.slots.get("last4"):
            turn.say(render("ask_last4"))
            return False
        result = box.call("verify_identity", {"method": "account_secret",
                                              "account_no": state.slots["account_no"],
                                              "last4": state.slots["last4"]})
        return self._verification_result(turn, result)

    def _verification_result(self, turn: Turn, result: Any, hotline: bool = False) -> bool:
        state = turn.state
        if result.status == "verified":
            return self._verified(turn, result)
        state.slots.pop("last4", None)
        if result.status == "locked":
            turn.say(render("verify_locked", message=result.message))
            turn.handoff, turn.outcome = True, Outcome.TRANSFERRED
            turn.actions.append("transfer_to_human")
            state.flow, state.queue = None, []
            return False
        if result.status == "invalid_input":
            field = getattr(result, "field", "account_no")
            state.slots.pop(field, None)
            if field == "check_answer":
                turn.say(render("ask_check_answer"))
            elif field == "last4":
                turn.say(render("ask_last4"))
            else:
                state.slots.pop("account_no", None)
                turn.say(render("ask_account"))
            return False
        if hotline:  # the road was wrong: fall back to 户号 + 后4位 on the hotline
            state.slots.pop("account_no", None)
            state.slots["ivr_failed"] = True
            turn.say(render("verify_failed", message=result.message))
            return False
        # A wrong tail: keep the 户号 and ask for the tail again, so the next bare 4 digits are a
        # counted attempt against it (a new 户号 in the answer replaces the kept one).
        turn.say(render("verify_failed_retry_tail", message=result.message))
        return False

    def _verified(self, turn: Turn, result: Any) -> bool:
        state = turn.state
        state.verified, state.account_no = True, result.account_no
        for key in ("account_no", "last4", "check_answer"):
            state.slots.pop(key, None)
        turn.actions.append("verify_identity")
        turn.say(render("verified", name_masked=result.customer_name_masked))
        return True

    # ------------------------------------------------------------ flows
    def _run_flows(self, turn: Turn) -> None:
        state = turn.state
        while state.flow:
            flow = state.flow
            if flow in NEEDS_IDENTITY and not self._ensure_verified(turn):
                return
            done = getattr(self, f"_flow_{flow}")(turn)
            if not done:
                return  # waiting for a slot or a confirmation
            state.slots["last_flow"] = flow
            state.flow = state.queue.pop(0) if state.queue else None

    def _flow_lookup_bill(self, turn: Turn) -> bool:
        period = turn.state.slots.get("period")
        latest = int(turn.state.slots.get("latest") or 1)
        result = turn.toolbox.call("lookup_bill", {"period": period} if period else {"latest": latest})
        if result.status == "ok":
            for bill in result.bills:
                due = f"，缴费截止日{format_value(bill.due_date)}" if bill.due_date else ""
                turn.say(render("bill_line", period=period_text(bill.period), total_kwh=_kwh(bill.total_kwh),
                                amount=bill.amount, due=due, status_cn=_status_text(bill)))
            turn.actions.append("lookup_bill")
            turn.outcome = turn.outcome or Outcome.RESOLVED
        else:
            self._tool_message(turn, result)
            if result.status == "not_found" and period:
                latest_bill = turn.toolbox.call("lookup_bill", {"latest": 1})
                if latest_bill.status == "ok":  # say what there is, so the customer is not left empty-handed
                    turn.say(render("latest_instead"))
                    for bill in latest_bill.bills:
                        due = f"，缴费截止日{format_value(bill.due_date)}" if bill.due_date else ""
                        turn.say(render("bill_line", period=period_text(bill.period),
                                        total_kwh=_kwh(bill.total_kwh), amount=bill.amount, due=due,
                                        status_cn=_status_text(bill)))
                    turn.state.slots["period"] = latest_bill.bills[0].period
                    turn.outcome = turn.outcome or Outcome.RESOLVED
        return True

    def _flow_explain_bill(self, turn: Turn) -> bool:
        period = turn.state.slots.get("period")
        result = self._with_latest_fallback(turn, "explain_bill", period)
        self._tool_message(turn, result)
        if result.status == "ok":
            turn.actions.append("explain_bill")
            turn.outcome = turn.outcome or Outcome.RESOLVED
        return True

    def _flow_payment_status(self, turn: Turn) -> bool:
        period = turn.state.slots.get("period")
        if not period and self._all_unpaid(turn):
            return True
        result = self._with_latest_fallback(turn, "payment_status", period)
        self._tool_message(turn, result)
        if result.status == "ok":
            turn.actions.append("payment_status")
            turn.outcome = turn.outcome or Outcome.RESOLVED
        return True

    _flow_overdue_late_fee = _flow_payment_status

    def _all_unpaid(self, turn: Turn) -> bool:
        """「有没有欠费」 without a month: the status of every bill still owed, oldest first.

        The latest bill alone can be paid while an older one is overdue. Returns False when nothing
        is owed (the latest bill's status then answers) or the bills cannot be listed.
        """
        bills = turn.toolbox.call("lookup_bill", {"latest": UNPAID_LOOKBACK})
        if bills.status != "ok":
            return False
        owed = sorted((b for b in bills.bills if b.status != "paid"), key=lambda b: b.period)
        if not owed:
            return False
        for bill in owed:
            result = turn.toolbox.call("payment_status", {"period": bill.period})
            self._tool_message(turn, result)
        turn.actions.append("payment_status")
        turn.outcome = turn.outcome or Outcome.RESOLVED
        return True

    def _with_latest_fallback(self, turn: Turn, tool: str, period: str | None) -> Any:
        """Run `tool` for `period`; if that month has no issued bill, say so and use the latest one."""
        result = turn.toolbox.call(tool, {"period": period} if period else {})
        if result.status == "not_found" and period:
            latest = turn.toolbox.call(tool, {})
            if latest.status == "ok":
                self._tool_message(turn, result)
                turn.say(render("latest_instead"))
                turn.state.slots["period"] = getattr(latest, "period", period)
                return latest
        return result

    def _flow_policy_question(self, turn: Turn) -> bool:
        query = turn.state.slots.get("trigger_text") or turn.text
        result = turn.toolbox.search(query, k=KB_CANDIDATES)
        if not result["results"]:
            turn.say(render("kb_not_found"))
            return True
        hit = _best_hit(query, result["results"])
        text = _with_article_context(hit)
        turn.say(render("kb_answer", title=hit["title"], section=hit["section"], text=_excerpt(text)))
        citation = {k: hit[k] for k in ("article_id", "title", "section", "source", "citation")}
        turn.citations.append({**citation, "excerpt": _excerpt(hit["text"], 200)})
        turn.passages.append(text)
        turn.actions.append("search_knowledge_base")
        turn.outcome = turn.outcome or Outcome.RESOLVED
        return True

    _flow_how_to_pay = _flow_policy_question

    def _flow_open_dispute(self, turn: Turn) -> bool:
        state = turn.state
        period = state.slots.get("period")
        if not period:
            turn.say(render("ask_dispute_period"))
            return False
        reason = state.slots.get("reason")
        if not reason:
            trigger = state.slots.get("trigger_text", "")
            if _DISPUTE_REASON_HINT.search(trigger):
                reason = state.slots["reason"] = trigger.strip()
            else:
                turn.say(render("ask_dispute_reason", period=period_text(period)))
                return False
        arguments = {"period": period, "category": _category(reason, DISPUTE_CATEGORIES), "reason": reason}
        confirm = render("confirm_dispute", period=period_text(period), reason=reason)
        state.pending = PendingAction(tool="open_dispute", arguments=arguments, summary=confirm.text)
        turn.say(confirm)
        return False

    def _flow_complaint(self, turn: Turn) -> bool:
        state = turn.state
        description = state.slots.get("description")
        if not description:
            trigger = state.slots.get("trigger_text", "").strip()
            if len(trigger) >= _COMPLAINT_MIN_CHARS:
                description = state.slots["description"] = trigger
            else:
                turn.say(render("ask_complaint_description"))
                return False
        arguments = {"category": _category(description, COMPLAINT_CATEGORIES), "description": description}
        confirm = render("confirm_complaint", description=description)
        state.pending = PendingAction(tool="intake_complaint", arguments=arguments, summary=confirm.text)
        turn.say(confirm)
        return False

    # ------------------------------------------------------------ confirmation, repair
    def _confirmation(self, turn: Turn) -> bool:
        """Handle the answer to a read-back. Returns False when the message starts something else."""
        state, intents = turn.state, turn.parsed.intents
        pending = state.pending
        assert pending is not None
        if _AFFIRM.match(turn.text) or ("affirm" in intents and not _DENY.match(turn.text)):
            state.pending = None
            if not self._ensure_verified(turn):
                return True
            result = turn.toolbox.call(pending.tool, pending.arguments)
            self._tool_message(turn, result)
            if result.status == "opened":
                turn.tickets.append(result.ticket_no)
                turn.actions.append(pending.tool)
                turn.outcome = Outcome.TICKET
            elif result.status == "duplicate":
                turn.outcome = turn.outcome or Outcome.RESOLVED
            for key in ("reason", "description"):
                state.slots.pop(key, None)
            state.slots["last_flow"] = state.flow
            state.flow = state.queue.pop(0) if state.queue else None
            if state.flow:
                self._run_flows(turn)
            return True
        if _DENY.match(turn.text) or "deny" in intents or "cancel" in intents:
            self._cancel(turn)
            return True
        entities = turn.parsed.entities
        if "correction" in intents or entities.get("period"):
            if pending.tool == "open_dispute" and state.slots.get("period"):
                state.pending = None
                turn.say(render("corrected"))
                self._run_flows(turn)
                return True
        if any(i in TASKS or i in HANDOFF_INTENTS for i in intents):
            state.pending = None  # the customer moved on: nothing is written
            return False
        turn.say(render("confirm_again"))
        return True

    def _cancel(self, turn: Turn) -> None:
        state = turn.state
        had_something = state.pending is not None or state.flow is not None
        state.pending, state.flow, state.queue = None, None, []
        for key in ("reason", "description", "period"):
            state.slots.pop(key, None)
        turn.say(render("cancelled" if had_something else "nothing_to_cancel"))
        if had_something:
            turn.actions.append("cancel")

    def _handoff(self, turn: Turn, intent: str) -> None:
        state = turn.state
        reason = HANDOFF_INTENTS[intent]
        summary = self._summary(turn, intent)
        result = turn.toolbox.call("transfer_to_human", {"reason": reason, "summary": summary})
        state.pending, state.flow, state.queue = None, None, []
        if result.status != "transferred":
            turn.say(render("handoff_unavailable"))
            return
        if intent in OUT_OF_SCOPE_ADVICE:
            turn.say(render("out_of_scope", advice=OUT_OF_SCOPE_ADVICE[intent], handoff_no=result.handoff_no))
        else:
            turn.say(render("handoff", handoff_no=result.handoff_no))
        turn.handoff, turn.outcome = True, Outcome.TRANSFERRED
        turn.actions.append("transfer_to_human")

    def _summary(self, turn: Turn, intent: str) -> str:
        state = turn.state
        who = f"已核实户号{state.account_no}" if state.verified else "身份未核实"
        recent = "；".join(h["text"] for h in state.history[-4:] if h["role"] == "user")
        return f"转人工原因：{intent}。{who}。客户最近的话：{recent or turn.text}"[:2000]

    def _unclear(self, turn: Turn) -> None:
        state = turn.state
        state.slots["unclear"] = int(state.slots.get("unclear", 0)) + 1
        if state.slots["unclear"] >= MAX_UNCLEAR:
            state.slots["unclear"] = 0
            summary = self._summary(turn, "not_understood")
            result = turn.toolbox.call("transfer_to_human", {"reason": "not_understood", "summary": summary})
            if result.status == "transferred":
                turn.say(render("clarify_handoff", handoff_no=result.handoff_no))
                turn.handoff, turn.outcome = True, Outcome.TRANSFERRED
                turn.actions.append("transfer_to_human")
                return
        turn.say(render("clarify"))

    def _goodbye(self, turn: Turn) -> None:
        state = turn.state
        if not state.csat_asked:
            state.csat_asked = True
            turn.say(render("ask_csat"))
        else:
            state.closed = True
            turn.say(render("goodbye"))

    def _csat(self, turn: Turn) -> bool:
        rating = turn.parsed.entities.get("csat")
        try:
            score, _ = parse_csat(_CSAT_LEVELS.get(str(rating), rating) if rating is not None else turn.text)
        except CsatError:
            if any(i in TASKS or i in HANDOFF_INTENTS for i in turn.parsed.intents):
                return False
            turn.say(render("csat_retry"))
            return True
        turn.csat = score
        turn.state.closed = True
        turn.say(render("csat_thanks"))
        return True

    def _tool_message(self, turn: Turn, result: Any) -> None:
        if result.status == "needs_verification":
            turn.state.verified = False
        if result.status == "error":
            turn.say(render("tool_error"))
            return
        turn.say(render("tool_message", message=result.message))


def _question_part(query: str) -> str:
    """The clauses of `query` that ask the question (「怀疑电表走得快，怎么申请校验电表」 → the second)."""
    parts = [p for p in re.split(r"[，,。？?！!；;\s]+", query) if p]
    asking = [p for p in parts if _GENERAL_QUESTION.search(p)]
    return "".join(asking) or query


# Modal pairs that many questions and titles share without saying which article is meant.
_FILLER_PAIRS = frozenset({"可以", "能不", "不能"})


def _bigrams(text: str) -> set[str]:
    chars = re.sub(r"[^\u4e00-\u9fff0-9A-Za-z]", "", text)
    return {chars[i:i + 2] for i in range(len(chars) - 1)} - _FILLER_PAIRS


def _best_hit(query: str, hits: list[dict[str, Any]]) -> dict[str, Any]:
    """The passage whose article title (a customer question) best matches what was asked.

    Hybrid retrieval puts the right article among the first few, but often a neighbour first
    (「投诉多久答复」 → the article on how to raise a dispute). Article titles are written as the
    customer's question, so the title sharing most character pairs with the asking clause wins;
    retrieval order breaks ties.
    """
    asked = _bigrams(_question_part(query))
    ranked = sorted(enumerate(hits), key=lambda item: (-len(asked & _bigrams(item[1]["title"])), item[0]))
    return ranked[0][1]


@lru_cache(maxsize=1)
def _article_sections() -> dict[str, list[tuple[str, str]]]:
    """Each article's (heading, text) sections, to add context around a short passage."""
    from knowledge_base.articles import load_articles

    sections: dict[str, list[tuple[str, str]]] = {}
    for article in load_articles().articles:
        found = re.findall(r"^##\s*(.+?)\s*\n(.*?)(?=^##\s|\Z)", article.body, flags=re.M | re.S)
        sections[article.id] = [(head.strip(), body.strip()) for head, body in found if body.strip()]
    return sections


def _with_article_context(hit: dict[str, Any], limit: int = 240) -> str:
    """The passage, then the article's other sections while they fit in `limit` characters.

    A short passage alone can answer a different question than the one asked: 「有哪些缴费方式」
    matches the 「线下缴费」 section, but the answer is the whole short list (online channels too).
    """
    text = hit["text"]
    for head, body in _article_sections().get(hit.get("article_id", ""), []):
        if head == hit.get("section") or body in text:
            continue
        addition = f"{head}：{body}"
        if len(re.sub(r"\s+", "", text + addition)) > limit:
            break
        text = f"{text}\n{addition}"
    return text


def _status_text(bill: Any) -> str:
    """A bill's payment state; a partly paid or overdue bill also says what is still owed."""
    outstanding = getattr(bill, "outstanding", None)
    if bill.status != "paid" and getattr(bill, "paid", None) and outstanding:
        return f"{bill.status_cn}，已缴{format_value(bill.paid)}元，尚欠{format_value(outstanding)}元"
    return str(bill.status_cn)


def _kwh(value: Any) -> str:
    from decimal import Decimal

    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return format(number.normalize(), "f")


def _excerpt(text: str, limit: int = 240) -> str:
    """The passage up to a sentence end near `limit` (never cut inside a number)."""
    text = re.sub(r"\s+", "", text)
    if len(text) <= limit:
        return text
    cut = text.rfind("。", 0, limit)
    return text[: cut + 1] if cut > 0 else text[:limit] + "……"
