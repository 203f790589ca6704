"""One place that wires settings to a ready retriever (CLI, LangChain tool and eval share it)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from knowledge_base.embeddings import get_embedder
from knowledge_base.retriever import KnowledgeRetriever, Mode
from knowledge_base.vector_store import IngestReport, KnowledgeStore, open_chroma_client


def open_store(embedder_spec: str | None = None, chroma_url: str | None = None,
               chroma_path: Path | None = None) -> KnowledgeStore:
    return KnowledgeStore(get_embedder(embedder_spec), open_chroma_client(chroma_url, chroma_path))


def open_retriever(embedder_spec: str | None = None, articles_dir: Path | None = None,
                   sync: bool = True, mode: Mode = "hybrid",
                   **options) -> tuple[KnowledgeRetriever, IngestReport | None]:
    """A retriever over the store; `sync` first brings the store in line with the article files
    (cheap when nothing changed: only hashes are compared)."""
    store = open_store(embedder_spec)
    report = store.ingest(articles_dir) if sync else None
    return KnowledgeRetriever(store, mode=mode, **options), report


@lru_cache(maxsize=2)
def default_retriever(embedder_spec: str | None = None) -> KnowledgeRetriever:
    """Process-wide retriever for the agent's tool (built once, synced once)."""
    retriever, _ = open_retriever(embedder_spec)
    return retriever
