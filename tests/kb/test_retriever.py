"""Hybrid retrieval on the fixture articles: ranking, category filter, citations, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_base.langchain_tools import KnowledgeBaseRetriever, make_search_tool
from knowledge_base.retriever import EmptyQueryError, KnowledgeRetriever
from knowledge_base.vector_store import KnowledgeStore


@pytest.fixture
def retriever(local_store: KnowledgeStore, articles_dir: Path) -> KnowledgeRetriever:
    local_store.ingest(articles_dir)
    return KnowledgeRetriever(local_store)


@pytest.mark.parametrize(("query", "expected"), [
    ("可以用支付宝交电费吗", "payment-fixture-alipay"),
    ("阶梯電價點樣計", "tariff-fixture-tiers"),
    ("接梯电价怎么算", "tariff-fixture-tiers"),
    ("多收咗嘅店费点样退返", "dispute-fixture-refund"),
    ("滞纳金算错了能退吗", "dispute-fixture-refund"),
    ("最大需量基本电费", "tariff-fixture-demand"),
])
def test_noisy_queries_find_the_article(retriever: KnowledgeRetriever, query: str, expected: str) -> None:
    assert retriever.search(query, k=1).hits[0].article_id == expected


@pytest.mark.parametrize("mode", ["bm25", "dense"])
def test_single_rankers_also_work(local_store: KnowledgeStore, articles_dir: Path, mode: str) -> None:
    local_store.ingest(articles_dir)
    retriever = KnowledgeRetriever(local_store, mode=mode)  # type: ignore[arg-type]
    assert retriever.search("支付宝交电费", k=1).hits[0].article_id == "payment-fixture-alipay"


def test_in_memory_dense_search_ranks_like_chroma(local_store: KnowledgeStore, articles_dir: Path) -> None:
    local_store.ingest(articles_dir)
    memory = KnowledgeRetriever(local_store, mode="dense", dense_backend="memory")
    chroma = KnowledgeRetriever(local_store, mode="dense", dense_backend="chroma")
    for query in ("两部制基本电费", "多收了怎么退", "支付宝"):
        for category in (None, "residential"):
            got = [h.article_id for h in memory.search(query, k=4, category=category).hits]
            assert got == [h.article_id for h in chroma.search(query, k=4, category=category).hits]


def test_category_filter_excludes_articles_that_do_not_apply(retriever: KnowledgeRetriever) -> None:
    query = "两部制基本电费按最大需量怎么收"
    assert retriever.search(query, k=4).hits[0].article_id == "tariff-fixture-demand"
    residential = retriever.search(query, k=4, category="residential")
    assert residential.hits
    assert all("residential" in h.applies_to for h in residential.hits)
    assert "tariff-fixture-demand" not in [h.article_id for h in residential.hits]
    business = retriever.search("阶梯电价", k=4, category="ci_two_part")
    assert "tariff-fixture-tiers" not in [h.article_id for h in business.hits]


def test_every_hit_carries_a_citation(retriever: KnowledgeRetriever) -> None:
    hits = retriever.search("电费多收了怎么退", k=3).hits
    top = hits[0]
    assert top.citation.article_id == "dispute-fixture-refund"
    assert top.citation.title == "电费多收了怎么退？"
    assert top.citation.section in {"申请核实", "退款方式"}
    assert top.citation.source == "本单位服务承诺"
    assert top.citation.effective_date == "2025-01-01"
    assert len({h.article_id for h in hits}) == len(hits)  # one hit per article
    assert all(h.citation.source and h.citation.section for h in hits)


@pytest.mark.parametrize("query", ["", "   ", "？？！"])
def test_empty_query_is_a_clear_error(retriever: KnowledgeRetriever, query: str) -> None:
    with pytest.raises(EmptyQueryError, match="query"):
        retriever.search(query)


def test_five_thousand_character_query_is_truncated_and_answered(retriever: KnowledgeRetriever) -> None:
    story = "".join(f"第{i}天我一直在想这件事情，" for i in range(400))
    query = "你好，" + story + "请问支付宝可以交电费吗"
    assert len(query) >= 5000
    result = retriever.search(query, k=3)
    assert result.truncated
    assert result.hits[0].article_id == "payment-fixture-alipay"


def test_bad_k_and_category_name_the_field(retriever: KnowledgeRetriever) -> None:
    with pytest.raises(ValueError, match="^k:"):
        retriever.search("电费", k=0)
    with pytest.raises(ValueError, match="^category:"):
        retriever.search("电费", category="household")


def test_langchain_retriever_returns_documents_with_citations(retriever: KnowledgeRetriever) -> None:
    lc = KnowledgeBaseRetriever(retriever=retriever, k=2, category="residential")
    docs = lc.invoke("阶梯电价怎么算")
    assert docs[0].metadata["article_id"] == "tariff-fixture-tiers"
    assert docs[0].metadata["source"] == "测试资料（阶梯电价）"
    assert "居民阶梯电价怎么算" in docs[0].page_content
    assert len(docs) <= 2


def test_search_tool_returns_passages_and_citations(retriever: KnowledgeRetriever) -> None:
    tool = make_search_tool(lambda: retriever)
    assert tool.name == "search_knowledge_base"
    payload = json.loads(tool.invoke({"query": "支付宝能交电费吗", "k": 2}))
    assert payload["results"][0]["article_id"] == "payment-fixture-alipay"
    assert "测试资料（缴费渠道）" in payload["results"][0]["citation"]
    error = json.loads(tool.invoke({"query": "  "}))
    assert "query" in error["error"]
