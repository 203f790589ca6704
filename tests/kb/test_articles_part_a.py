"""Format checks for the knowledge-base articles of part A (tariff, bill, meter).

The retrieval engineer parses exactly the binding article format, so a malformed article would
silently drop out of search. These checks use only yaml and the standard library on purpose:
the content must stay valid whatever the retrieval code does.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

ARTICLES_DIR = Path(__file__).resolve().parents[2] / "knowledge_base" / "articles"
PART_A_CATEGORIES = ("tariff", "bill", "meter")
MINIMUM_ARTICLES = {"tariff": 30, "bill": 16, "meter": 16}
REQUIRED_KEYS = {"id", "title", "category", "applies_to", "effective_date", "source", "keywords"}
CUSTOMER_CATEGORIES = {"residential", "ci_single", "ci_two_part", "agricultural"}
BODY_MIN_CHARS, BODY_MAX_CHARS = 150, 600
SECTIONS_MIN, SECTIONS_MAX = 2, 5

# Every 8-decimal price an article may quote, as listed in the tariff reference
# (tariffs-guangdong.md §1 and §5). A price typed wrongly in an article must fail here.
KNOWN_PRICES = {
    "0.58886875",  # residential tier 1 (Guangzhou)
    "0.63886875",  # tier 2
    "0.88886875",  # tier 3
    "0.62586875",  # shared meter 合表
    "0.00866875",  # residential government funds (included)
    "0.02766875",  # C&I government funds
    "0.99500875",  # residential TOU tier-1 peak
    "0.22914475",  # residential TOU tier-1 valley
}

FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)


def _article_paths() -> list[Path]:
    return sorted(p for c in PART_A_CATEGORIES for p in (ARTICLES_DIR / c).glob("*.md"))


def _split(path: Path) -> tuple[dict, str]:
    """Return (front matter, body) or fail naming the file."""
    text = path.read_text(encoding="utf-8")
    match = FRONT_MATTER.match(text)
    assert match, f"{path.name}: no YAML front matter between '---' lines"
    meta = yaml.safe_load(match.group(1))
    assert isinstance(meta, dict), f"{path.name}: front matter is not a mapping"
    return meta, match.group(2).strip()


ARTICLES = _article_paths()


@pytest.mark.parametrize("category", PART_A_CATEGORIES)
def test_each_category_has_enough_articles(category: str) -> None:
    count = len(list((ARTICLES_DIR / category).glob("*.md")))
    assert count >= MINIMUM_ARTICLES[category], f"{category}: {count} articles"


@pytest.mark.parametrize("path", ARTICLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_front_matter_is_complete_and_consistent(path: Path) -> None:
    meta, _ = _split(path)
    assert set(meta) == REQUIRED_KEYS, f"{path.name}: keys {sorted(meta)}"
    assert meta["id"] == path.stem, f"{path.name}: id {meta['id']!r} is not the file name"
    assert meta["category"] == path.parent.name, f"{path.name}: category {meta['category']!r}"
    assert meta["id"].startswith(f"{meta['category']}-"), f"{path.name}: id lacks category prefix"
    assert re.fullmatch(r"[a-z0-9-]+", meta["id"]), f"{path.name}: id is not an ascii slug"

    applies_to = meta["applies_to"]
    assert isinstance(applies_to, list) and applies_to, f"{path.name}: applies_to must be a list"
    if applies_to != ["all"]:
        unknown = set(applies_to) - CUSTOMER_CATEGORIES
        assert not unknown, f"{path.name}: unknown applies_to {sorted(unknown)}"
        assert len(set(applies_to)) == len(applies_to), f"{path.name}: duplicate applies_to"

    assert isinstance(meta["effective_date"], dt.date), f"{path.name}: effective_date not a date"
    assert isinstance(meta["title"], str) and meta["title"].strip(), f"{path.name}: empty title"
    assert isinstance(meta["source"], str) and meta["source"].strip(), f"{path.name}: empty source"
    keywords = meta["keywords"]
    assert isinstance(keywords, list) and len(keywords) >= 3, f"{path.name}: too few keywords"
    assert all(isinstance(k, str) and k.strip() for k in keywords), f"{path.name}: bad keyword"


@pytest.mark.parametrize("path", ARTICLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_body_has_title_sections_and_sane_length(path: Path) -> None:
    meta, body = _split(path)
    lines = body.splitlines()
    assert lines[0] == f"# {meta['title']}", f"{path.name}: body must start with '# <title>'"
    sections = [line for line in lines if line.startswith("## ")]
    assert SECTIONS_MIN <= len(sections) <= SECTIONS_MAX, f"{path.name}: {len(sections)} sections"
    assert len(set(sections)) == len(sections), f"{path.name}: repeated section heading"
    assert BODY_MIN_CHARS <= len(body) <= BODY_MAX_CHARS, f"{path.name}: body {len(body)} chars"
    assert not re.search(r"^#{3,} ", body, re.MULTILINE), f"{path.name}: use only ## sections"


@pytest.mark.parametrize("path", ARTICLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_quoted_prices_match_the_tariff_reference(path: Path) -> None:
    _, body = _split(path)
    quoted = set(re.findall(r"\d+\.\d{8}", body))
    assert quoted <= KNOWN_PRICES, f"{path.name}: unknown prices {sorted(quoted - KNOWN_PRICES)}"


def test_ids_and_titles_are_unique() -> None:
    metas = [_split(p)[0] for p in ARTICLES]
    ids = [m["id"] for m in metas]
    titles = [m["title"] for m in metas]
    assert len(ids) == len(set(ids)), "duplicate article id"
    assert len(titles) == len(set(titles)), "duplicate article title"
