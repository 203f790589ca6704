"""Which retrieved passage answers, and the rest of its article around it.

Hybrid retrieval (`retriever.py`) puts the right article among the first few, but often a
neighbour first (「投诉多久答复」 → the article on how to raise a dispute). Article titles are
written as the customer's question, so `best_hit` picks the passage whose title shares most
character pairs with the asking words; retrieval order breaks ties. A short section alone can
answer a different question than the one asked (「有哪些缴费方式」 matches the 「线下缴费」 section,
but the answer is the whole short list), so `with_article_context` adds the article's other
sections while they fit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from knowledge_base.articles import load_articles

Hit = TypeVar("Hit", bound=Mapping[str, Any])

# Modal pairs that many questions and titles share without saying which article is meant.
_FILLER_PAIRS = frozenset({"可以", "能不", "不能"})
_SECTION = re.compile(r"^##\s*(.+?)\s*\n(.*?)(?=^##\s|\Z)", flags=re.M | re.S)


def _bigrams(text: str) -> set[str]:
    chars = re.sub(r"[^\u4e00-\u9fff0-9A-Za-z]", "", text)
    return {chars[i:i + 2] for i in range(len(chars) - 1)} - _FILLER_PAIRS


def best_hit(question: str, hits: Sequence[Hit]) -> Hit:
    """The hit whose `title` shares most character pairs with `question` (the asking words).

    `hits` are in retrieval order (each a mapping with at least ``title``); the caller picks the
    asking clause of a longer message (`agent.nlu.questions.question_part`).
    """
    if not hits:
        raise ValueError("hits: at least one passage is needed")
    asked = _bigrams(question)
    ranked = sorted(enumerate(hits), key=lambda item: (-len(asked & _bigrams(item[1]["title"])), item[0]))
    return ranked[0][1]


@lru_cache(maxsize=1)
def article_sections() -> dict[str, list[tuple[str, str]]]:
    """Each article's (heading, text) sections, read once (~0.5 s: call it before serving)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for article in load_articles().articles:
        found = _SECTION.findall(article.body)
        sections[article.id] = [(head.strip(), body.strip()) for head, body in found if body.strip()]
    return sections


def with_article_context(hit: Mapping[str, Any], limit: int = 240) -> str:
    """The passage's ``text``, then its article's other sections while they fit in `limit` characters."""
    text = str(hit["text"])
    for head, body in article_sections().get(hit.get("article_id", ""), []):
        if head == hit.get("section") or body in text:
            continue
        addition = f"{head}：{body}"
        if len(re.sub(r"\s+", "", text + addition)) > limit:
            break
        text = f"{text}\n{addition}"
    return text
