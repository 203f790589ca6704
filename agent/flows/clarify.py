"""「您是想……？」: when the model is unsure, ask which task was meant instead of guessing or
handing the customer off as out of scope.

The question offers the two or three likeliest tasks (`Parsed.candidates`) as quick replies: the
web chat shows them as buttons (`Reply.choices`), the text numbers them for WeChat and the
hotline. The answer — a number (「2」「第二个」「二」) or the option's words — continues that task
with the message that was not understood, so a month or reason given in it is not lost.
"""

from __future__ import annotations

import re

from agent.replies import render, templates
from agent.turn import Turn

MAX_CHOICES = 3
MIN_CANDIDATE = 0.05  # an intent the model gives less than this is not worth offering
MIN_BEST = 0.2  # below this for every task the model has no idea: the general question lists them all
_ORDINALS = {"1": 0, "一": 0, "壹": 0, "幺": 0, "2": 1, "二": 1, "两": 1, "贰": 1, "3": 2, "三": 2, "叁": 2}
_NUMBER = re.compile(r"^\s*(?:第|选|选择)?\s*([123一二两三壹贰叁幺])\s*(?:个|项|条|号)?\s*[。.!！,，]?\s*$")
_FIRST_CHOICE = re.compile(r"^\s*(?:就)?(?:是)?(?:第一|头一)")


def label(intent: str) -> str | None:
    """The option's words (`templates.yaml` key `choice_<intent>`), or None when it is not offered."""
    template = templates().get(f"choice_{intent}")
    return template.text if template is not None else None


# The desk's commonest tasks (the ones the general 「clarify」 question names), offered beside an
# unsure out-of-scope guess that is the only likely option: 「那个电的事情我想问问」 reads as
# 停电 at ~0.85 with every billing task below MIN_CANDIDATE, and the customer may mean a bill.
COMMON_TASKS = ("lookup_bill", "explain_bill", "payment_status", "open_dispute")


def served_first(options: list[str]) -> list[str]:
    """The likeliest options, the tasks the desk serves itself before those it hands off (报告停电),
    each group in the model's order: 「第一个」 then never depends on which hand-off the model
    happens to rank above a billing task it is just as unsure of."""
    from agent.flows import HANDOFF_BY_INTENT  # the registry imports this module

    return sorted(options, key=lambda intent: intent in HANDOFF_BY_INTENT)


def offer(turn: Turn, offerable: frozenset[str], fallback: tuple[str, ...] = ()) -> bool:
    """Ask which of the likeliest tasks was meant. False when there is nothing worth offering.

    With fewer than two likely options, `fallback` tasks fill the list up to MAX_CHOICES.
    """
    options: list[str] = []
    for intent, score in turn.parsed.candidates:
        if intent in offerable and score >= MIN_CANDIDATE and label(intent) and intent not in options:
            options.append(intent)
    options = options[:MAX_CHOICES]
    scores = dict(turn.parsed.candidates)
    if not options or scores[options[0]] < MIN_BEST:
        return False
    if len(options) < 2:
        options += [i for i in fallback if i in offerable and label(i) and i not in options][:MAX_CHOICES - len(options)]
    options = served_first(options)
    labels = [str(label(i)) for i in options]
    state = turn.state
    state.slots["choices"] = options
    state.slots["choice_text"] = turn.text
    if len(options) == 1:
        turn.say(render("clarify_one", option=labels[0]))
        turn.choices = [labels[0], "都不是"]
    else:
        numbered = "；".join(f"{n}. {text}" for n, text in enumerate(labels, start=1))
        turn.say(render("clarify_choices", options=numbered))
        turn.choices = labels
    return True


def chosen(turn: Turn, affirm: bool) -> str | None:
    """The task the customer picked from the offered ones (by number or by words), if any."""
    options = list(turn.state.slots.get("choices") or [])
    if not options:
        return None
    text = turn.text.strip()
    if len(options) == 1 and affirm:
        return options[0]
    match = _NUMBER.match(text)
    if match:
        index = _ORDINALS[match.group(1)]
        return options[index] if index < len(options) else None
    if _FIRST_CHOICE.match(text):
        return options[0]
    for intent in options:
        words = label(intent) or ""
        if words and (words in text or text.rstrip("。.!！") in words and len(text) >= 2):
            return intent
    return None


def forget(turn: Turn) -> str:
    """Drop the offer; returns the message that was not understood."""
    turn.state.slots.pop("choices", None)
    return str(turn.state.slots.pop("choice_text", "") or "")


TEMPLATES = ("clarify_choices", "clarify_one")
