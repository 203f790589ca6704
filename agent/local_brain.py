"""The local brain's engine: routing, slot filling, verification, confirmation, repair.

No network, no model calls: intents and entities come from `agent.nlu`, every figure in a reply
comes from a template slot filled with a tool result or a cited passage. The tasks themselves are
flows in `agent.flows` (one module each, declaring their intents, slots, tools and templates);
this module routes a message to them, fills the slots they read, verifies the customer before
an account flow, runs the multi-intent queue, and handles what is not a task: confirmation of a
write (read back, run only after a clear 「是」), cancel, correction, hand-off, clarification,
CSAT. A reply that asks for something says which slot it awaits (`Rendered.awaiting`), so
channels and simulated users know what to answer.
"""

from __future__ import annotations

import re
from typing import Any

from agent.flows import BY_INTENT, BY_WRITE, FLOW_FREE_TEXT_SLOTS, HANDOFF_BY_INTENT, TASKS, clarify
from agent.flows.base import say_result
from agent.flows.handoff import hand_off
from agent.models import Outcome
from agent.nlu.questions import is_general_question
from agent.records import CsatError, parse_csat
from agent.replies import render
from agent.turn import Turn
from knowledge_base.rerank import preload as preload_knowledge
from tools.models import VerificationMethod

FREE_TEXT_SLOTS = FLOW_FREE_TEXT_SLOTS | {"check_answer"}
MIN_DETAIL_CHARS = 6  # a shorter message at a read-back is an answer to it, not more of the description
MAX_UNCLEAR = 3  # consecutive misunderstandings before a person takes over
_CSAT_LEVELS: dict[str, int] = {"satisfied": 4, "neutral": 3, "dissatisfied": 2}  # 满意 / 一般 / 不满意 on 1–5

# A reply that asked the customer to rate the service (our ask_csat, or a model's own question).
_ASKS_RATING = re.compile(r"评分|打分|评价|几分|几星|星级|满意吗|满意度|是否满意|满不满意")


def typed_rating(turn: Turn) -> int | None:
    """The 1–5 score in the customer's own message — the rating entity (「非常不满意，给1星」),
    else the whole text read as a rating (「4分」「一般」) — or None when it gives none."""
    rating = turn.parsed.entities.get("csat")
    try:
        score, _ = parse_csat(_CSAT_LEVELS.get(str(rating), rating) if rating is not None else turn.text)
    except CsatError:
        return None
    return score


def answers_rating(turn: Turn) -> bool:
    """Whether the message rates the service, so that the engine routes an LLM-brain turn to the
    local brain, which records it as the rating it asked for (the conversation's CSAT; a 1–2 is a
    negative experience): the score is read from the customer's words, never from the model.

    A rating when we asked for one and the message gives a score; otherwise only when the message
    is a rating and no task or hand-off (「不满意，我要投诉」 is the complaint; 「多收了1分钱」 a bill
    question), and a bare digit (「1」 answering a model's numbered choice) only after a reply that
    asked for a rating.
    """
    if typed_rating(turn) is None:
        return False
    state, parsed = turn.state, turn.parsed
    if state.awaiting == "csat":
        return True
    if any(i in TASKS or i in HANDOFF_BY_INTENT for i in parsed.intents):
        return False
    last_reply = next((h["text"] for h in reversed(state.history) if h["role"] == "assistant"), "")
    if _ASKS_RATING.search(last_reply):
        return True
    rated = "rate_satisfaction" in parsed.intents and "rate_satisfaction" not in parsed.unsure
    return rated and not turn.text.strip().isdigit()


_AFFIRM = re.compile(r"^\s*(是|是的|对|对的|好|好的|确认|确定|可以|行|嗯|没问题|同意|提交吧?|办理吧?)[。！!，,.\s]*$")
_DENY = re.compile(r"^\s*(否|不|不是|不用|不要|算了|取消|先不|不办了?"
                   r"|(?:不|别|先不|不用|不要)(?:改|换|修改|更改|办|提交|申请|核查|投诉)了?)[。！!，,.\s]*$")
# A month and nothing else (「2026年5月」「上个月」「5月份的」): the answer to 「哪个月？」, whatever
# task the classifier reads into it — a bare month is in the training lines of every bill task.
_MONTH_WORDS = re.compile(r"(?:20[0-9]{2}\s*年\s*)?(?:[01]?[0-9]|[一二三四五六七八九十]{1,3})\s*月份?"
                          r"|(?:上上|上|这|本|前)个?月份?|(?:今|去)年")
_MONTH_FILLER = re.compile(r"[\s的是就那这张期个份账单电费吧呢啊哦呀嗯，。,.!！、]")
_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9][\s-]?[0-9]{4}[\s-]?[0-9]{4}(?![0-9])")
_ACCOUNT = re.compile(r"(?<![0-9])([0-9]{12})(?![0-9])")
_LAST4 = re.compile(r"(?:后\s*[4四]\s*位|尾号)\s*(?:是|为|:|：)?\s*([0-9]{3}[0-9Xx])(?![0-9])")
_ONLY_LAST4 = re.compile(r"^\D*?([0-9]{3}[0-9Xx])\D*$")
_TAIL_DIGITS = re.compile(r"^[0-9]{3}[0-9Xx]$")
_PERIOD = re.compile(r"(20[0-9]{2})\s*(?:年|-|/)\s*([01]?[0-9])(?:\s*月)?")

# Intents a general question overrides: the question is answered from the knowledge base instead.
# 「我的地址登记的是哪里」 asks about this customer's own record: the contact flows are never overridden,
# nor the insights (「有哪些省电方法」 is answered from this customer's own usage and tariff).
_OWN_RECORD = {"query_contact_info", "change_contact_phone", "saving_advice", "usage_check"}
_GENERAL_OVERRIDABLE = (TASKS - _OWN_RECORD) | {"provide_identity"} | {h.intent for h in HANDOFF_BY_INTENT.values()
                                                      if h.general_question_to_kb}
# What a clarifying question may offer: the tasks, and the hand-offs (a person, another desk).
OFFERABLE = TASKS | frozenset(HANDOFF_BY_INTENT)


class LocalBrain:
    """Deterministic dialogue policy over the tools."""

    name = "local"

    @staticmethod
    def preload() -> None:
        """Read what the first answers would otherwise load (the articles' sections, ~0.5 s), so that
        no customer's turn pays for it — on the event loop it would hold up every other turn.
        The negative-experience classifier is fitted here too (~0.2 s)."""
        from agent.experience.negative.emotion import default_classifier

        preload_knowledge()
        default_classifier()

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
        if state.awaiting == "choice" and self._choice(turn):
            return
        if "cancel" in intents or (state.flow and _DENY.match(turn.text)):
            self._cancel(turn)
            return
        if self._unsure_out_of_scope(turn):
            return
        intents = turn.parsed.intents
        for intent in intents:
            if intent in HANDOFF_BY_INTENT:
                hand_off(turn, HANDOFF_BY_INTENT[intent], self._summary(turn, intent))
                return
        if state.flow and state.awaiting in FREE_TEXT_SLOTS:
            self._run_flows(turn)  # the message is the answer (a reason, a description), not a new task
            return
        tasks = [i for i in dict.fromkeys(intents) if i in TASKS]
        if tasks and self._answers_awaited_slot(turn, tasks):
            tasks = []  # 「2026年5月」 answering the dispute's 「哪个月？」: not a bill lookup
        if "correction" in intents and not tasks and state.slots.get("last_flow") and not state.flow:
            tasks = [state.slots["last_flow"]]
            turn.say(render("corrected"))
        if tasks:
            state.slots["unclear"] = 0
            verifying = state.awaiting in ("account_no", "last4", "check_answer")
            if state.flow and state.flow not in tasks and verifying:
                tasks = [state.flow, *tasks]  # verification in progress: keep the waiting task first
            elif state.flow in tasks and state.awaiting in ("period", "reason", "description"):
                # 「10月份那张账单，电表读数不对」 answering the dispute's month: the same task, with
                # its slots given up front — not a bill lookup first.
                tasks = [state.flow, *(t for t in tasks if t not in (state.flow, "lookup_bill"))]
            state.flow, state.queue = tasks[0], [t for t in tasks[1:] if t != tasks[0]]
            state.slots["trigger_text"] = turn.text
            state.slots["task_started_at"] = state.turns
            labels = [clarify.label(t) for t in tasks]
            if len(tasks) > 1 and all(labels):
                turn.say(render("serving_each", tasks="、".join(str(x) for x in labels)))  # says what it will do
            self._run_flows(turn)
            return
        if state.flow:  # an answer to the slot we asked for
            self._run_flows(turn)
            return
        if (not state.verified and state.awaiting in ("account_no", "last4", "check_answer")
                and state.slots.get("identity_said_at") == state.turns):
            # 「4444」 answering 「后4位？」 is the tail, even when the classifier reads a rating into it.
            if self._ensure_verified(turn):
                turn.say(render("ask_more"))
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

    @staticmethod
    def _answers_awaited_slot(turn: Turn, tasks: list[str]) -> bool:
        """The message fits the slot the flow asked for, and names no other task with confidence.

        A month for 「哪个月？」, a mobile number for the new phone: taken as the answer unless a task
        other than the waiting one is sure — a stronger classifier reads 「2026年5月」 as lookup_bill,
        and an answer must not restart the dialogue as another task. A bare month is the answer
        however sure the classifier is.
        """
        state, parsed, text = turn.state, turn.parsed, turn.text
        if not state.flow or state.flow in tasks:
            return False
        if state.awaiting == "period":
            if not (state.slots.get("period_said_at") == state.turns or parsed.entities.get("latest")):
                return False
            if not _MONTH_FILLER.sub("", _MONTH_WORDS.sub("", text)):
                return True
        elif state.awaiting == "new_phone":
            if not _MOBILE.search(text):
                return False
        else:
            return False
        return all(task in parsed.unsure for task in tasks if task != state.flow)

    def _unsure_out_of_scope(self, turn: Turn) -> bool:
        """An out-of-scope guess the model is not sure of is never a hand-off by default.

        With a task waiting for its slot, or other tasks in the message, the guess is dropped and
        the message served as those; alone, the customer is asked which task was meant. Returns
        True when that question was asked.
        """
        parsed, state = turn.parsed, turn.state
        out_of_scope = [i for i in parsed.intents
                        if i in HANDOFF_BY_INTENT and HANDOFF_BY_INTENT[i].reason == "out_of_scope"]
        guesses = [] if parsed.out_of_scope_sure else out_of_scope
        # 「人也没变多」 in a long story read as 转人工 by an unsure clause: not a hand-off when a task is there
        guesses += [i for i in parsed.intents if i in HANDOFF_BY_INTENT and i in parsed.unsure and i not in guesses]
        if not guesses:
            return False
        rest = [i for i in parsed.intents if i not in guesses]
        if state.flow or any(i in TASKS for i in rest):
            parsed.intents = rest
            return False
        if any(i not in out_of_scope for i in guesses):
            return False  # an unsure 转人工 alone: a person is still what the customer gets
        return clarify.offer(turn, OFFERABLE, fallback=clarify.COMMON_TASKS)

    def _choice(self, turn: Turn) -> bool:
        """The answer to 「您是想办理以下哪一项？」: continue the picked task with the first message."""
        state = turn.state
        pick = clarify.chosen(turn, affirm=bool(_AFFIRM.match(turn.text)))
        if pick is None:
            if _DENY.match(turn.text) or "都不是" in turn.text:
                clarify.forget(turn)
                self._unclear(turn)
                return True
            clarify.forget(turn)
            return False  # something else: route it as a new message
        original = clarify.forget(turn) or turn.text
        state.slots["unclear"] = 0
        if pick in HANDOFF_BY_INTENT:
            hand_off(turn, HANDOFF_BY_INTENT[pick], self._summary(turn, pick))
            return True
        if pick not in TASKS:
            return False
        state.flow, state.queue = pick, []
        state.slots["trigger_text"] = original
        state.slots["task_started_at"] = state.turns - 1  # the task was asked for in the first message
        self._run_flows(turn)
        return True

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
        if not is_general_question(turn.text):
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
        if (account or last4) and not state.verified:
            state.slots["identity_said_at"] = state.turns  # this message answers 「户号？」「后4位？」
        period = entities.get("period")
        if not period:
            match = _PERIOD.search(text)
            if match and 1 <= int(match.group(2)) <= 12:
                period = f"{match.group(1)}-{int(match.group(2)):02d}"
        if period:
            state.slots["period"] = period
            state.slots["period_said_at"] = state.turns  # a flow tells a month said for it from an older one
            state.slots.pop("latest", None)
        elif entities.get("latest"):
            state.slots["latest"] = int(entities["latest"])
            state.slots.pop("period", None)
        if state.awaiting == "check_answer":
            state.slots["check_answer"] = str(last4).upper() if last4 else text.strip()
        if state.awaiting in FLOW_FREE_TEXT_SLOTS and not _DENY.match(text):
            state.slots[state.awaiting] = text.strip()  # a flow's reason, description …
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
        """Run the current flow, then the queued ones, until one waits for the customer."""
        state = turn.state
        while state.flow:
            flow = state.flow
            spec = BY_INTENT[flow]
            if spec.needs_identity and not self._ensure_verified(turn):
                return
            done = spec.run(turn)
            if not done:
                return  # waiting for a slot or a confirmation
            state.slots["last_flow"] = flow
            state.flow = state.queue.pop(0) if state.queue else None

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
            say_result(turn, result)
            if result.status == "opened":
                turn.tickets.append(result.ticket_no)
                turn.actions.append(pending.tool)
                turn.outcome = Outcome.TICKET
            elif result.status == "changed":  # a write with no ticket (the contact phone)
                turn.actions.append(pending.tool)
                turn.outcome = turn.outcome or Outcome.RESOLVED
            elif result.status == "duplicate" and getattr(result, "opened_here", False):
                # This conversation's own open ticket: most often a resend whose first attempt
                # committed the ticket but not its turn record, so the ticket belongs to this turn.
                turn.tickets.append(result.open_ticket_no)
                turn.outcome = Outcome.TICKET
            elif result.status in ("duplicate", "unchanged"):
                turn.outcome = turn.outcome or Outcome.RESOLVED
            for key in FLOW_FREE_TEXT_SLOTS:
                state.slots.pop(key, None)
            state.slots["last_flow"] = state.flow
            state.flow = state.queue.pop(0) if state.queue else None
            if state.flow:
                self._run_flows(turn)
            return True
        if _DENY.match(turn.text) or "deny" in intents or "cancel" in intents:
            self._cancel(turn)
            return True
        entities, writer = turn.parsed.entities, BY_WRITE.get(pending.tool)
        corrected_by = writer.corrected_by if writer is not None else ()
        if "correction" in intents or any(entities.get(slot) for slot in corrected_by):
            if corrected_by and any(state.slots.get(slot) for slot in corrected_by):
                state.pending = None  # read it back again with the corrected value
                turn.say(render("corrected"))
                self._run_flows(turn)
                return True
        if writer is not None and self._adds_detail(turn, writer):
            return True
        # Moved on only to another task the model is sure of: 「不改了」 read as change_contact_phone
        # (unsure, and the very task being confirmed) is not a new request to change the phone.
        if any((i in TASKS and i != state.flow and i not in turn.parsed.unsure) or i in HANDOFF_BY_INTENT
               for i in intents):
            state.pending = None  # the customer moved on: nothing is written
            return False
        turn.say(render("confirm_again"))
        return True

    def _adds_detail(self, turn: Turn, writer: Any) -> bool:
        """「就是上周三下午，在小区门口」 typed at the read-back: more of the description, not a new task.

        It is added to the flow's free-text slot and the write is read back again with it, so what is
        written is what the customer said.
        """
        state, text = turn.state, turn.text.strip()
        if not writer.free_text_slots or len(re.sub(r"\W", "", text)) < MIN_DETAIL_CHARS:
            return False
        if any((i in TASKS and i not in writer.intents) or i in HANDOFF_BY_INTENT for i in turn.parsed.intents):
            return False
        slot = writer.free_text_slots[-1]
        before = str(state.slots.get(slot) or "").rstrip("。，,. ")
        if not before or text in before:
            return False
        state.slots[slot] = f"{before}；{text}"
        state.pending = None
        turn.say(render("detail_added"))
        self._run_flows(turn)
        return True

    def _cancel(self, turn: Turn) -> None:
        state = turn.state
        had_something = state.pending is not None or state.flow is not None
        state.pending, state.flow, state.queue = None, None, []
        for key in (*FLOW_FREE_TEXT_SLOTS, "period"):
            state.slots.pop(key, None)
        turn.say(render("cancelled" if had_something else "nothing_to_cancel"))
        if had_something:
            turn.actions.append("cancel")

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
        if clarify.offer(turn, OFFERABLE):
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
        score = typed_rating(turn)
        if score is None:
            if any(i in TASKS or i in HANDOFF_BY_INTENT for i in turn.parsed.intents):
                return False
            turn.say(render("csat_retry"))
            return True
        turn.csat = score
        turn.state.closed = True
        turn.say(render("csat_thanks"))
        return True
