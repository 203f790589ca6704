"""Which retrieved passage answers, and the rest of its article around it.

Hybrid retrieval (`retriever.py`) puts the right article among the first few, but often a
neighbour first (「投诉多久答复」 → the article on how to raise a dispute). Article titles are
written as the customer's question, so `best_hit` picks the passage whose article is asked most
like the asking words: its title together with the closest of its other phrasings (keywords and
section headings, which name the narrower questions it answers); retrieval order breaks ties. A short section alone can
answer a different question than the one asked (「有哪些缴费方式」 matches the 「线下缴费」 section,
but the answer is the whole short list), so `with_article_context` adds the article's other
sections while they fit.

`best_hit` always picks something, and the best of five can still answer a neighbouring question
(「可以开增值税专用发票吗」 → how to get an e-invoice). `covers` says whether the picked article names
the point that was asked, by the rules of `coverage.yaml` (data, validated at load).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from knowledge_base.articles import Article, load_articles
from knowledge_base.normalize import QueryNormalizer, normalize_text

Hit = TypeVar("Hit", bound=Mapping[str, Any])

# Modal pairs that many questions and titles share without saying which article is meant.
_FILLER_PAIRS = frozenset({"可以", "能不", "不能"})
_SECTION = re.compile(r"^##\s*(.+?)\s*\n(.*?)(?=^##\s|\Z)", flags=re.M | re.S)


def _bigrams(text: str) -> set[str]:
    chars = re.sub(r"[^\u4e00-\u9fff0-9A-Za-z]", "", text)
    return {chars[i:i + 2] for i in range(len(chars) - 1)} - _FILLER_PAIRS


def best_hit(question: str, hits: Sequence[Hit]) -> Hit:
    """The hit whose article is asked most like `question` (the asking words).

    The score is the number of the question's character pairs found in the article's title plus
    its closest other phrasing (one keyword or one section heading): 「多久开始收违约金」 shares only
    违约金 with the title 「晚交一两天也要交违约金吗？」, but its section 「过了到期日就开始算」
    names the asked point, while the residential article's title 「居民电费逾期了违约金怎么算？」
    shares one pair more and none of its phrasings adds the point. Pairs that name no article
    (怎么, 可以 … `coverage.yaml`'s stop_pairs) are not counted. One phrasing, not all of them:
    an article with many keywords would otherwise win by their number. Both sides are normalised
    as queries are (Cantonese, typos, 截止日期→到期日). `hits` are in retrieval order (each a
    mapping with at least ``title``; ``article_id`` to use its phrasings); the caller picks the
    asking clause of a longer message (`agent.nlu.questions.question_part`).
    """
    if not hits:
        raise ValueError("hits: at least one passage is needed")
    asked = _bigrams(_question_normalizer().normalize(question)) - coverage_rules().stop_pairs
    phrasings = _article_phrasings()

    def score(hit: Mapping[str, Any]) -> int:
        title = asked & _bigrams(normalize_text(str(hit["title"])))
        others = phrasings.get(str(hit.get("article_id", "")), ())
        return len(title) + max((len((asked & other) - title) for other in others), default=0)

    ranked = sorted(enumerate(hits), key=lambda item: (-score(item[1]), item[0]))
    return ranked[0][1]


@lru_cache(maxsize=1)
def _articles() -> tuple[Article, ...]:
    return tuple(load_articles().articles)  # ~0.5 s: read once for the caches below


@lru_cache(maxsize=1)
def _article_phrasings() -> dict[str, tuple[frozenset[str], ...]]:
    """Each article's character pairs per keyword and per section heading (normalised)."""
    return {
        a.id: tuple(frozenset(_bigrams(normalize_text(p)))
                    for p in (*a.keywords, *(head for head, _ in _SECTION.findall(a.body))))
        for a in _articles()
    }


@lru_cache(maxsize=1)
def article_sections() -> dict[str, list[tuple[str, str]]]:
    """Each article's (heading, text) sections, read once (~0.5 s: call it before serving)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for article in _articles():
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


def preload() -> None:
    """Read the articles and build what `best_hit`, `with_article_context` and `covers` look up
    (~0.5 s), so no customer's turn pays for it."""
    article_sections()
    _article_phrasings()
    _article_texts()
    coverage_rules()


COVERAGE_PATH = Path(__file__).resolve().parent / "coverage.yaml"


class CoverageRulesError(ValueError):
    """A coverage file that cannot be used; the message names the file and the field."""

    def __init__(self, path: Path, field_name: str, message: str) -> None:
        super().__init__(f"{path} [{field_name}]: {message}")


@dataclass(frozen=True)
class CoveragePoint:
    """A point a customer can ask about, and what an article must say to answer it."""

    name: str
    asked: tuple[re.Pattern[str], ...]
    answered_by: tuple[re.Pattern[str], ...]

    def asked_in(self, question: str) -> bool:
        return any(p.search(question) for p in self.asked)

    def answered_in(self, article: str) -> bool:
        return any(p.search(article) for p in self.answered_by)


@dataclass(frozen=True)
class CoverageRules:
    threshold: float
    min_pairs: int
    stop_pairs: frozenset[str]
    points: tuple[CoveragePoint, ...]
    effective_date: dt.date
    source: str


def _patterns(path: Path, field_name: str, value: Any) -> tuple[re.Pattern[str], ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise CoverageRulesError(path, field_name, "must be a non-empty list of non-empty strings")
    compiled = []
    for i, text in enumerate(value):
        try:
            compiled.append(re.compile(normalize_text(text)))
        except re.error as exc:
            raise CoverageRulesError(path, f"{field_name}[{i}]", f"not a regular expression: {exc}") from exc
    return tuple(compiled)


def load_coverage_rules(path: Path = COVERAGE_PATH) -> CoverageRules:
    """Read and check `coverage.yaml`; a malformed file is refused, naming the file and field."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CoverageRulesError(path, "<file>", f"cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise CoverageRulesError(path, "<file>", "must be a mapping")
    threshold = data.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        raise CoverageRulesError(path, "threshold", f"must be a number in [0, 1), got {threshold!r}")
    min_pairs = data.get("min_pairs")
    if isinstance(min_pairs, bool) or not isinstance(min_pairs, int) or min_pairs < 1:
        raise CoverageRulesError(path, "min_pairs", f"must be a positive integer, got {min_pairs!r}")
    stop = data.get("stop_pairs")
    if not isinstance(stop, list) or not all(isinstance(s, str) and len(s) == 2 for s in stop):
        raise CoverageRulesError(path, "stop_pairs", "must be a list of two-character strings")
    effective = data.get("effective_date")
    if not isinstance(effective, dt.date):
        raise CoverageRulesError(path, "effective_date", f"must be a date (YYYY-MM-DD), got {effective!r}")
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        raise CoverageRulesError(path, "source", "must say where the rules come from")
    raw_points = data.get("points")
    if not isinstance(raw_points, list):
        raise CoverageRulesError(path, "points", "must be a list")
    points = []
    for i, raw in enumerate(raw_points):
        where = f"points[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
            raise CoverageRulesError(path, f"{where}.name", "each point needs a name")
        points.append(CoveragePoint(raw["name"], _patterns(path, f"{where}.asked", raw.get("asked")),
                                    _patterns(path, f"{where}.answered_by", raw.get("answered_by"))))
    return CoverageRules(float(threshold), min_pairs, frozenset(stop), tuple(points), effective, source.strip())


@lru_cache(maxsize=1)
def coverage_rules() -> CoverageRules:
    return load_coverage_rules()


@lru_cache(maxsize=1)
def _question_normalizer() -> QueryNormalizer:
    return QueryNormalizer()  # no pinyin corrector: a point is matched as the customer wrote it


@lru_cache(maxsize=1)
def _article_texts() -> dict[str, str]:
    """Each article's title and sections, normalised as queries are (what an answer could say)."""
    return {a.id: normalize_text(f"{a.title}\n{a.body}") for a in _articles()}


def covers(question: str, hit: Mapping[str, Any], topic: str = "",
           rules: CoverageRules | None = None) -> bool:
    """Whether the article of `hit` answers the point of `question` (the customer's asking words).

    `topic` is what a flow already knows the question is about (the arrangement flow searches for
    「电费分期缴纳 缓交 延期缴费」 beside the customer's words): the share of shared pairs is then
    judged on the topic, while the points are still looked for in the customer's words only, so
    an appended topic neither hides a point nor makes a colloquial question look uncovered.
    """
    rules = rules or coverage_rules()
    asked = _question_normalizer().normalize(question)
    own = normalize_text(" ".join(str(hit.get(k, "")) for k in ("title", "section", "text")))
    article = f"{_article_texts().get(str(hit.get('article_id', '')), '')}\n{own}"
    if any(point.asked_in(asked) and not point.answered_in(article) for point in rules.points):
        return False
    pairs = _bigrams(_question_normalizer().normalize(topic) if topic else asked) - rules.stop_pairs
    if len(pairs) < rules.min_pairs:
        return True
    return len(pairs & _bigrams(article)) / len(pairs) >= rules.threshold
