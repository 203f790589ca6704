"""「阶梯电价怎么算」「有哪些缴费方式」: a cited knowledge-base passage; no verification needed.

The engine also routes here any general rules/procedure question (`agent.nlu.questions`) that
does not name the customer's own bill.
"""

from __future__ import annotations

import re

from agent.flows.base import Flow, resolved
from agent.nlu.questions import question_part
from agent.replies import render
from agent.turn import Turn
from knowledge_base.rerank import best_hit, covers, with_article_context

KB_CANDIDATES = 5  # passages fetched for a policy question; the best-titled one answers


def excerpt(text: str, limit: int = 240) -> str:
    """The passage up to a sentence end near `limit` (never cut inside a number)."""
    text = re.sub(r"\s+", "", text)
    if len(text) <= limit:
        return text
    cut = text.rfind("。", 0, limit)
    return text[: cut + 1] if cut > 0 else text[:limit] + "……"


def policy_question(turn: Turn) -> bool:
    # In a long message, the clause that asked (「能不能分期交？」), not the whole story.
    flow = turn.state.flow or ""
    query = turn.parsed.clause_of.get(flow) if len(turn.parsed.intents) > 1 else None
    query = query or turn.state.slots.get("trigger_text") or turn.text
    return answer_from_knowledge_base(turn, query, turn.toolbox.search(query, k=KB_CANDIDATES))


def choose_passage(query: str, hits: list[dict], topic: str = "") -> dict | None:
    """The passage that answers: the best-asked (`best_hit`) of those covering the asked point, or
    None when every one answers a neighbouring question. Also what the retrieval eval scores."""
    asked = question_part(query)
    covering = [h for h in hits if covers(asked, h, topic=topic)]
    if not covering:
        return None
    return best_hit(question_part(f"{query} {topic}" if topic else query), covering)


def answer_from_knowledge_base(turn: Turn, query: str, result: dict, topic: str = "") -> bool:
    """The best-titled passage of a search for `query` that covers the asked point, cited; else
    「没有找到」, or 「没有说到这一点」 when every passage answers a neighbouring question.

    `query` is the customer's words; `topic` is what the caller appended to them for the search
    (the arrangement flow's 分期/缓交 terms): it helps pick the title but is not taken for something
    the customer asked (`knowledge_base.rerank.covers`).
    """
    if not result["results"]:
        turn.say(render("kb_not_found"))
        return True
    hit = choose_passage(query, result["results"], topic)
    if hit is None:
        turn.say(render("kb_not_covered"))
        return True
    text = with_article_context(hit)
    turn.say(render("kb_answer", title=hit["title"], section=hit["section"], text=excerpt(text)))
    citation = {k: hit[k] for k in ("article_id", "title", "section", "source", "citation")}
    turn.citations.append({**citation, "excerpt": excerpt(hit["text"], 200)})
    turn.passages.append(text)
    resolved(turn, "search_knowledge_base")
    return True


FLOW = Flow(
    name="knowledge", intents=("policy_question", "how_to_pay"), run=policy_question, needs_identity=False,
    slots=("trigger_text",), tools=("search_knowledge_base",), templates=("kb_answer", "kb_not_found", "kb_not_covered"),
)
