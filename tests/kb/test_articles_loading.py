"""Article loading and heading-aware chunking."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge_base.articles import ArticleError, load_articles, parse_article
from knowledge_base.chunking import chunk_article


def test_fixture_articles_load_as_typed_articles(articles_dir: Path) -> None:
    result = load_articles(articles_dir)
    assert not result.errors
    by_id = {a.id: a for a in result.articles}
    assert set(by_id) == {"tariff-fixture-tiers", "tariff-fixture-demand", "payment-fixture-alipay",
                          "dispute-fixture-refund"}
    everyone = ("residential", "ci_single", "ci_two_part", "agricultural")
    assert by_id["payment-fixture-alipay"].applies_to == everyone
    assert by_id["tariff-fixture-demand"].applies_to == ("ci_two_part",)
    assert by_id["tariff-fixture-tiers"].effective_date.isoformat() == "2025-01-01"


def test_broken_front_matter_is_named_and_the_rest_still_load(articles_dir: Path) -> None:
    broken = articles_dir / "tariff" / "tariff-broken.md"
    broken.write_text("---\nid: tariff-broken\ntitle: [未闭合\n---\n# 标题\n\n## 一\n正文\n", encoding="utf-8")
    result = load_articles(articles_dir)
    assert len(result.articles) == 4
    assert len(result.errors) == 1
    assert "tariff-broken.md" in str(result.errors[0])


def test_missing_key_error_names_file_and_field(articles_dir: Path) -> None:
    path = articles_dir / "payment" / "payment-fixture-alipay.md"
    path.write_text(path.read_text(encoding="utf-8").replace("source: 测试资料（缴费渠道）\n", ""),
                    encoding="utf-8")
    with pytest.raises(ArticleError) as info:
        parse_article(path)
    assert info.value.field_name == "source"
    assert "payment-fixture-alipay.md" in str(info.value)


def test_id_must_match_file_name(articles_dir: Path) -> None:
    path = articles_dir / "payment" / "payment-fixture-alipay.md"
    renamed = path.with_name("payment-other.md")
    path.rename(renamed)
    with pytest.raises(ArticleError, match=r"\[id\]"):
        parse_article(renamed)


def test_chunks_follow_headings_with_title_and_stable_ids(articles_dir: Path) -> None:
    article = parse_article(articles_dir / "tariff" / "tariff-fixture-tiers.md")
    chunks = chunk_article(article)
    assert [c.section for c in chunks] == ["分档规则", "夏季和非夏季"]
    assert [c.chunk_id for c in chunks] == ["tariff-fixture-tiers#00", "tariff-fixture-tiers#01"]
    assert chunks[1].document.startswith("居民阶梯电价怎么算？\n夏季和非夏季\n")
    again = chunk_article(parse_article(articles_dir / "tariff" / "tariff-fixture-tiers.md"))
    assert [c.content_hash for c in again] == [c.content_hash for c in chunks]


def test_changing_one_section_changes_only_its_hash(articles_dir: Path) -> None:
    path = articles_dir / "tariff" / "tariff-fixture-tiers.md"
    before = chunk_article(parse_article(path))
    path.write_text(path.read_text(encoding="utf-8").replace("第一档电价最低。", "第一档电价最低，第三档最高。"),
                    encoding="utf-8")
    after = chunk_article(parse_article(path))
    assert before[0].content_hash != after[0].content_hash
    assert before[1].content_hash == after[1].content_hash
