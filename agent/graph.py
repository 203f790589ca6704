"""The dialogue engine as a LangGraph: START → (LLM brain | local brain) → END.

Each brain node understands the message (once per turn), answers, and passes its reply through
the guard, which checks it against the turn's evidence and masks personal numbers; a brain node
cannot finish without it. Identity verification, tool calls and replies happen inside the brain
nodes (the local brain verifies before any account tool; the LLM brain must call
`verify_identity`, and the tools refuse otherwise). An LLM failure routes the same turn to the
local brain, which then answers and guards it.

Understanding and the guard were nodes of their own; folded into the brain nodes, a local turn is
one Pregel step instead of three, which saved ~0.5 ms of LangGraph bookkeeping on every turn
(~8 % of a web-chat turn's server CPU under load).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from langchain_core.messages import AIMessage

from agent.experience.negative import pipeline as negative
from agent.grounding import Evidence, check_reply, evidence_from, extract_facts, mask_personal_numbers
from agent.llm_brain import LLMBrain, LLMTurn, LLMUnavailable, parse_tool_output, service_policy
from agent.local_brain import LocalBrain, answers_rating
from agent.models import Outcome
from agent.replies import render, templates
from agent.streaming import SentenceSplitter
from agent.turn import Parsed, Turn
from tools.registry import WRITE_TOOLS


logger = logging.getLogger(__name__)


class GraphState(TypedDict):
    turn: Turn


Understand = Callable[[str, Any], Parsed]


def build_graph(understand: Understand, local: LocalBrain, llm: LLMBrain | None) -> Any:
    """Compile the engine; `understand(text, today)` turns a message into intents and entities."""

    def understood(turn: Turn) -> None:
        if not turn.understood:  # the local brain after an LLM fallback does not ask again
            turn.parsed = understand(turn.text, turn.today)
            turn.understood = True

    def route(state: GraphState) -> str:
        turn = state["turn"]
        # A pending write is resumed by the deterministic confirmation step, whichever brain asked;
        # a typed rating is recorded as the local brain's; a remedy's answer and an angry message
        # get the negative-experience handling (guide §7.4).
        if turn.brain != "llm" or llm is None or turn.state.pending is not None:
            return "local"
        understood(turn)
        if answers_rating(turn):
            # 「1分」「非常不满意，给1星」: the rating the widget gives, typed; the local brain reads it
            # from the customer's words and records it (CSAT, and a 1–2 as a negative experience).
            turn.state.awaiting = "csat"
            return "local"
        return "local" if negative.answers_before_any_brain(turn) else "llm"

    def llm_node(state: GraphState) -> GraphState:
        turn = state["turn"]
        assert llm is not None
        understood(turn)
        try:
            if turn.emit is not None:
                _run_llm_streaming(llm, turn)
            else:
                _run_llm(llm, turn)
        except LLMUnavailable:
            turn.fell_back = True
            # A stream that broke off mid-answer leaves its partial text: the local brain starts clean.
            turn.reply_text, turn.llm_turn, turn.awaiting = None, None, None
            turn.citations.clear()
            turn.passages.clear()
            return state
        _guard(turn, llm)
        negative.after_llm_turn(turn)  # a complaint or lock-out the model's tools made (guide §7.4)
        return state

    def after_llm(state: GraphState) -> str:
        return "local" if state["turn"].fell_back else END

    def local_node(state: GraphState) -> GraphState:
        turn = state["turn"]
        understood(turn)
        turn.brain = "local"  # whoever was asked, the local brain answers this reply
        # Negative customer experience (guide §7.4): an offered remedy's answer or an angry message
        # is answered before the brain; what the turn did (CSAT 1–2, complaint, lock-out) after it.
        if not negative.before_turn(turn, understand):
            local.respond(turn)
        negative.after_turn(turn)
        _guard(turn, llm)
        return state

    graph = StateGraph(GraphState)
    graph.add_node("llm", llm_node)
    graph.add_node("local", local_node)
    graph.add_conditional_edges(START, route, {"llm": "llm", "local": "local"})
    graph.add_conditional_edges("llm", after_llm, {"local": "local", END: END})
    graph.add_edge("local", END)
    return graph.compile()


def _llm_context(turn: Turn) -> str:
    state = turn.state
    who = f"已核实身份，户号{state.account_no}。" if state.verified else "尚未核实身份。"
    identity = "，".join(f"{k}={v}" for k, v in state.channel_identity.items())
    return f"渠道：{state.channel}。{who}" + (f"渠道提供的身份：{identity}。" if identity else "")


def _run_llm(llm: LLMBrain, turn: Turn) -> None:
    result = llm.respond(turn.text, turn.toolbox.langchain_tools(), history=turn.state.history[-12:],
                         context=_llm_context(turn))
    _take_llm_turn(turn, result)


def _run_llm_streaming(llm: LLMBrain, turn: Turn) -> None:
    """The LLM turn with its answer streamed: each finished sentence is guarded, then emitted.

    The tools have all run before the answer's first words (`LLMBrain.respond_stream`), so the
    evidence is complete when the first sentence is checked. The first sentence with an unbacked
    figure is held: the stream is closed (the model stops) and the turn carries the text so far,
    which `_guard` then regenerates or replaces, as for a whole reply.
    """
    assert turn.emit is not None
    result = LLMTurn(reply="")
    deltas = llm.respond_stream(turn.text, turn.toolbox.langchain_tools(), into=result,
                                history=turn.state.history[-12:], context=_llm_context(turn))
    splitter = SentenceSplitter()
    evidence: Evidence | None = None

    def passes(sentence: str) -> bool:
        nonlocal evidence
        if not extract_facts(sentence):
            turn.emit(mask_personal_numbers(sentence))  # type: ignore[misc]
            return True
        if evidence is None:  # built once, at the first figure: every tool has run by then
            _take_llm_turn(turn, result)
            evidence = _evidence(turn, turn.brain)
        verdict = check_reply(sentence, evidence)
        if verdict.grounded:
            turn.emit(verdict.text)  # type: ignore[misc]
        return verdict.grounded

    held = False
    try:
        for delta in deltas:
            if not all(passes(sentence) for sentence in splitter.feed(delta)):
                held = True
                break
    finally:
        deltas.close()  # a held sentence: stop the model's stream here
    if not held:
        rest = splitter.flush()
        if rest.strip():
            passes(rest)  # an unbacked tail is caught again by `_guard` on the whole reply
    else:
        result.messages.append(AIMessage(result.reply))  # what the regeneration asks the model to redo
    _take_llm_turn(turn, result)


def _take_llm_turn(turn: Turn, result: LLMTurn) -> None:
    """What the LLM brain did this turn, into the `Turn`: its reply, actions, sources and pending write."""
    state = turn.state
    turn.llm_turn = result
    turn.actions.clear()
    turn.citations.clear()
    turn.passages.clear()
    turn.reply_text = result.reply
    for call in turn.toolbox.calls:
        data = parse_tool_output(call.result)
        status = data.get("status") if isinstance(data, dict) else None
        if call.tool == "verify_identity" and status == "verified":
            state.verified, state.account_no = True, data["account_no"]
            turn.actions.append("verify_identity")
        elif call.tool == "transfer_to_human" and status == "transferred":
            turn.handoff, turn.outcome = True, Outcome.TRANSFERRED
            turn.actions.append("transfer_to_human")
        elif call.tool == "search_knowledge_base" and isinstance(data, dict):
            for hit in data.get("passages", [])[:3]:
                turn.citations.append({k: hit.get(k) for k in ("article_id", "title", "section", "source",
                                                               "citation")})
                turn.passages.append(hit.get("text", ""))
            turn.actions.append("search_knowledge_base")
        elif status == "ok" and call.tool not in WRITE_TOOLS:  # a read answered the customer
            turn.actions.append(call.tool)
            turn.outcome = turn.outcome or Outcome.RESOLVED
    if result.pending is not None:
        state.pending = result.pending
        turn.awaiting = "confirm"


def _guard(turn: Turn, llm: LLMBrain | None) -> None:
    """Replace an ungrounded reply: one regeneration for the LLM brain, else a safe template."""
    if not extract_facts(turn.text_out):  # nothing to back: only mask (the common short reply)
        turn.reply_text = mask_personal_numbers(turn.text_out)
        return
    evidence = _evidence(turn, turn.brain)
    verdict = check_reply(turn.text_out, evidence)
    if not verdict.grounded and turn.brain == "llm" and llm is not None and turn.llm_turn is not None:
        turn.violations = [v.text for v in verdict.violations]
        try:
            retry = llm.regenerate(turn.llm_turn, turn.violations)
        except LLMUnavailable:
            retry = None
        if retry is not None:
            verdict = check_reply(retry, evidence)
            turn.reply_text = verdict.text
    if not verdict.grounded:
        turn.violations = turn.violations or [v.text for v in verdict.violations]
        if turn.brain == "local":  # a template filled from the wrong source: a bug worth a log line
            logger.warning("ungrounded local reply in %s: %s", turn.state.conversation_id, turn.violations)
        turn.grounded = False
        turn.state.pending = None  # never ask to confirm a write whose read-back was not grounded
        safe = render("safe_fallback")
        turn.reply_text, turn.parts, turn.awaiting = safe.text, [safe], None
        return
    turn.reply_text = verdict.text


def _evidence(turn: Turn, brain: str) -> Evidence:
    """What a reply of this turn may state: tool results, passages, the customer's words, our wording."""
    results = [parse_tool_output(call.result) for call in turn.toolbox.calls]
    user_messages = [h["text"] for h in turn.state.history if h["role"] == "user"] + [turn.text]
    # What the customer said, as understood (「上个月」 resolved to a period), also counts as their words.
    slots = {k: v for k, v in turn.state.slots.items() if k in ("period", "account_no")}
    understood = [turn.parsed.entities, slots]
    # The fixed wording of the templates used and of the service policy is ours, not invented.
    fixed = [templates()[part.template].text for part in turn.parts if part.template in templates()]
    if brain == "llm":
        fixed.append(service_policy())
    return evidence_from(tool_results=[*results, *understood], passages=[*turn.passages, *fixed],
                         user_messages=user_messages)
