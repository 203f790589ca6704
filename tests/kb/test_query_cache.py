"""The retriever's query-vector LRU: a repeated question skips the embedder and ranks the same."""

from __future__ import annotations

from typing import Any

import numpy as np

from knowledge_base import retriever as retriever_module
from knowledge_base.retriever import KnowledgeRetriever


class CountingEmbedder:
    """Wraps the real embedder and counts query encodings."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.queries = inner, 0
        self.name, self.dim = inner.name, inner.dim

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        self.queries += 1
        return self.inner.embed_query(text)


def _counted(local_store: Any, articles_dir: Any) -> tuple[KnowledgeRetriever, CountingEmbedder]:
    local_store.ingest(articles_dir)
    retriever = KnowledgeRetriever(local_store)
    counter = CountingEmbedder(local_store.embedder)
    local_store.embedder = counter
    return retriever, counter


def test_a_repeated_question_is_embedded_once_and_ranks_the_same(local_store: Any, articles_dir: Any) -> None:
    retriever, counter = _counted(local_store, articles_dir)
    first = retriever.search("电费怎么交")
    again = retriever.search("电费怎么交")
    assert counter.queries == 1
    assert [h.chunk_id for h in again.hits] == [h.chunk_id for h in first.hits]
    assert first.hits, "the fixture articles answer this question"
    retriever.clear_query_cache()
    retriever.search("电费怎么交")
    assert counter.queries == 2


def test_the_least_recently_used_question_is_dropped(local_store: Any, articles_dir: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(retriever_module, "QUERY_VECTOR_CACHE_SIZE", 2)
    retriever, counter = _counted(local_store, articles_dir)
    for question in ("电费怎么交", "阶梯电价怎么算", "电费怎么交", "逾期有违约金吗"):
        retriever.search(question)
    assert counter.queries == 3  # the second 「电费怎么交」 came from the cache
    retriever.search("电费怎么交")  # still cached: it was used more recently than 阶梯电价
    assert counter.queries == 3
    retriever.search("阶梯电价怎么算")  # dropped when the third question came in
    assert counter.queries == 4
    vector = retriever.query_vector(retriever.prepare_query("电费怎么交")[1])
    assert not vector.flags.writeable
