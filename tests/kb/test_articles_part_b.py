"""Format checks for the knowledge-base articles of part B (payment … scope).

The retrieval engine parses exactly the binding article format, so a malformed article would be
skipped or mis-filtered at ingestion. These tests read the files with yaml and the standard
library only, so they stay independent of the retrieval code that consumes them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ARTICLES_DIR = Path(__file__).resolve().parents[2] / "knowledge_base" / "articles"

# Minimum article counts per category that part B promised (issue 3).
PART_B_MINIMUMS: dict[str, int] = {
    "payment": 12,
    "due": 9,
    "dispute": 9,
    "complaint": 8,
    "privacy": 6,
    "account": 8,
    "channel": 5,
    "scope": 5,
}
ALL_CATEGORIES = {
    "tariff", "bill", "payment", "due", "meter", "dispute", "complaint", "privacy", "account",
    "channel", "scope",
}
REQUIRED_KEYS = {"id", "title", "category", "applies_to", "effective_date", "source", "keywords"}
CUSTOMER_CATEGORIES = {"residential", "ci_single", "ci_two_part", "agricultural"}
BODY_MIN_CHARS, BODY_MAX_CHARS = 150, 600
MIN_SECTIONS, MAX_SECTIONS = 2, 5
# Every source must name a reference document or the utility's service commitments.
KNOWN_SOURCES = (
    "T/CI 1281", "客户体验管理 供电服务应用指南", "本单位服务承诺", "粤发改价格", "粤价", "发改价格", "发改办价格",
    "供电营业规则",
)
# Time figures customers rely on; any other number would be an invented commitment.
ALLOWED_TIME_FIGURES: dict[str, set[int]] = {
    "个工作日": {1, 5, 10},
    "小时": {2, 24},
    "天": {15, 30},
    "年": {2},
}
ID_PATTERN = re.compile(r"^[a-z]+-[a-z0-9]+(?:-[a-z0-9]+)*$")


class ArticleFormatError(ValueError):
    """An article file that does not follow the binding format; the message names the file and field."""


@dataclass(frozen=True)
class Article:
    path: Path
    meta: dict
    body: str


def parse_article(path: Path) -> Article:
    """Split one article into front matter and body, validating the front matter keys and values."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ArticleFormatError(f"{path.name}: front matter must start with '---' on the first line")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ArticleFormatError(f"{path.name}: front matter has no closing '---'") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise ArticleFormatError(f"{path.name}: front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise ArticleFormatError(f"{path.name}: front matter must be a mapping")
    missing = REQUIRED_KEYS - meta.keys()
    extra = meta.keys() - REQUIRED_KEYS
    if missing:
        raise ArticleFormatError(f"{path.name}: missing keys {sorted(missing)}")
    if extra:
        raise ArticleFormatError(f"{path.name}: unexpected keys {sorted(extra)}")
    for key in ("id", "title", "category", "source"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise ArticleFormatError(f"{path.name}: {key} must be a non-empty string")
    if not isinstance(meta["effective_date"], dt.date):
        raise ArticleFormatError(f"{path.name}: effective_date must be a YYYY-MM-DD date")
    for key in ("applies_to", "keywords"):
        value = meta[key]
        all_text = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
        if not value or not all_text:
            raise ArticleFormatError(f"{path.name}: {key} must be a non-empty list of strings")
    applies_to = meta["applies_to"]
    if applies_to != ["all"] and not set(applies_to) <= CUSTOMER_CATEGORIES:
        raise ArticleFormatError(f"{path.name}: applies_to has unknown values {applies_to}")
    if len(set(applies_to)) != len(applies_to):
        raise ArticleFormatError(f"{path.name}: applies_to repeats a value")
    return Article(path=path, meta=meta, body="\n".join(lines[end + 1:]).strip())


def section_headings(body: str) -> list[str]:
    return [line[3:].strip() for line in body.split("\n") if line.startswith("## ")]


def part_b_paths() -> list[Path]:
    return sorted(p for c in PART_B_MINIMUMS for p in (ARTICLES_DIR / c).glob("*.md"))


PATHS = part_b_paths()


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


# --- the parser itself rejects what it should (so a passing suite means something) -------------

GOOD_ARTICLE = """---
id: payment-example
title: 示例
category: payment
applies_to: [all]
effective_date: 2025-11-21
source: 本单位服务承诺
keywords: [交费]
---
# 示例
"""


def test_parser_accepts_a_well_formed_article(tmp_path: Path) -> None:
    path = tmp_path / "payment-example.md"
    path.write_text(GOOD_ARTICLE, encoding="utf-8")
    article = parse_article(path)
    assert article.meta["effective_date"] == dt.date(2025, 11, 21)
    assert article.body == "# 示例"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (GOOD_ARTICLE.replace("---\nid", "id", 1), "front matter must start"),
        (GOOD_ARTICLE.replace("source: 本单位服务承诺\n", ""), "missing keys ['source']"),
        (GOOD_ARTICLE.replace("[all]", "[residents]"), "applies_to has unknown values"),
        (GOOD_ARTICLE.replace("2025-11-21", "next year"), "effective_date"),
        (GOOD_ARTICLE.replace("keywords: [交费]", "keywords: 交费"), "keywords must be"),
        (GOOD_ARTICLE.replace("title: 示例", "title: 示例\nauthor: x"), "unexpected keys ['author']"),
    ],
)
def test_parser_names_the_broken_field(tmp_path: Path, broken: str, message: str) -> None:
    path = tmp_path / "payment-example.md"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ArticleFormatError, match=re.escape(message)):
        parse_article(path)


# --- the articles ------------------------------------------------------------------------------


def test_each_part_b_category_has_its_minimum_number_of_articles() -> None:
    counts = {c: len(list((ARTICLES_DIR / c).glob("*.md"))) for c in PART_B_MINIMUMS}
    short = {c: n for c, n in counts.items() if n < PART_B_MINIMUMS[c]}
    assert not short, f"categories below their minimum: {short} (minimums {PART_B_MINIMUMS})"
    assert sum(counts.values()) >= 62


@pytest.mark.parametrize("path", PATHS, ids=_ids(PATHS))
def test_article_follows_the_binding_format(path: Path) -> None:
    article = parse_article(path)
    meta, body = article.meta, article.body
    assert meta["id"] == path.stem, "id must equal the file name without .md"
    assert meta["category"] == path.parent.name, "category must equal the folder"
    assert meta["category"] in ALL_CATEGORIES
    assert ID_PATTERN.match(meta["id"]), f"id {meta['id']!r} is not <category>-<english-slug>"
    assert meta["id"].startswith(meta["category"] + "-")
    assert any(s in meta["source"] for s in KNOWN_SOURCES), f"source {meta['source']!r} names no reference"
    assert len(meta["keywords"]) >= 3, "give customers' own words: at least three keywords"
    assert body.split("\n", 1)[0] == f"# {meta['title']}", "body must open with '# <title>'"
    headings = section_headings(body)
    assert MIN_SECTIONS <= len(headings) <= MAX_SECTIONS, f"{len(headings)} '## ' sections"
    assert len(set(headings)) == len(headings), "section headings must differ (they label chunks)"
    assert BODY_MIN_CHARS <= len(body) <= BODY_MAX_CHARS, f"body is {len(body)} characters"
    assert "###" not in body, "only '##' headings: retrieval chunks by them"


def uncommitted_time_figures(body: str) -> list[str]:
    """Day/hour/year counts in the text that are not among the committed figures."""
    found = []
    for unit, allowed in ALLOWED_TIME_FIGURES.items():
        found += [m.group(0) for m in re.finditer(rf"(\d+)\s*{unit}", body) if int(m.group(1)) not in allowed]
    return found


def test_time_figure_check_flags_an_invented_deadline() -> None:
    body = "1个工作日内联系，3个工作日内答复，48小时内回电，逾期15天提醒。"
    assert uncommitted_time_figures(body) == ["3个工作日", "48小时"]


@pytest.mark.parametrize("path", PATHS, ids=_ids(PATHS))
def test_article_states_only_committed_time_figures(path: Path) -> None:
    """A day or hour count that is not in the commitments would promise something nobody promised."""
    assert uncommitted_time_figures(parse_article(path).body) == []


def _front_matter_id(path: Path) -> str | None:
    """The id of any article (other authors' too), read leniently: their format is their tests' job."""
    match = re.search(r"^id:\s*(\S+)\s*$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return match.group(1) if match else None


def test_ids_and_titles_are_unique_across_the_whole_knowledge_base() -> None:
    ids = [i for p in sorted(ARTICLES_DIR.glob("*/*.md")) if (i := _front_matter_id(p))]
    assert {parse_article(p).meta["id"] for p in PATHS} <= set(ids)
    assert len(ids) == len(set(ids)), [i for i in set(ids) if ids.count(i) > 1]
    titles = [parse_article(p).meta["title"] for p in PATHS]
    assert len(titles) == len(set(titles)), [t for t in set(titles) if titles.count(t) > 1]


def test_late_fee_rates_match_the_commitments() -> None:
    """Late-fee rates are the figures customers dispute most; only 千分之一/二/三 are committed."""
    rates = set()
    for path in PATHS:
        rates |= set(re.findall(r"千分之[一二三四五六七八九十]+", parse_article(path).body))
    assert rates, "no article states a late-fee rate"
    assert rates <= {"千分之一", "千分之二", "千分之三"}, rates
