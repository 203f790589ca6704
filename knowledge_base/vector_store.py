"""Chunk vectors in Chroma: a local persistent store by default, a Chroma server when configured.

We always pass our own embeddings (offline, from installed packages); Chroma's default embedding
function would download a model at run time, so collections are created with none. One collection
per embedder, because vectors of different models are not comparable. Ingestion is incremental by
content hash, so re-running it only re-embeds what changed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

from knowledge_base.articles import CUSTOMER_CATEGORIES, ArticleError, load_articles
from knowledge_base.chunking import Chunk, chunk_articles
from knowledge_base.embeddings import Embedder

CONNECT_TIMEOUT_SECONDS = 3.0
REQUEST_TIMEOUT_SECONDS = 30.0
EMBED_BATCH = 32


class ChromaUnavailableError(RuntimeError):
    """The configured Chroma server cannot be reached; raised quickly instead of hanging."""


def var_dir() -> Path:
    return Path(os.environ.get("POWERDESK_VAR_DIR", "var"))


def collection_name_for(embedder_name: str) -> str:
    """Chroma names allow [a-zA-Z0-9._-], 3-512 chars; model paths get a short hash."""
    if embedder_name.startswith("st:"):
        path = embedder_name[3:]
        digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:10]
        base = re.sub(r"[^a-zA-Z0-9]+", "-", Path(path).name).strip("-")[:40] or "model"
        return f"kb-st-{base}-{digest}"
    return "kb-" + re.sub(r"[^a-zA-Z0-9]+", "-", embedder_name).strip("-")


def open_chroma_client(url: str | None = None, path: Path | None = None):
    """HttpClient for `url` (or POWERDESK_CHROMA_URL), else a PersistentClient under var/chroma."""
    import chromadb
    from chromadb.config import Settings

    url = url if url is not None else os.environ.get("POWERDESK_CHROMA_URL") or None
    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if not url:
        path = Path(path) if path else var_dir() / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ChromaUnavailableError(f"POWERDESK_CHROMA_URL 格式不正确：{url!r}（应为 http://主机:端口）")
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    base = f"{parsed.scheme}://{parsed.hostname}:{port}"
    try:  # Chroma's own client waits forever; check reachability with a short timeout first.
        response = httpx.get(f"{base}/api/v2/heartbeat", timeout=CONNECT_TIMEOUT_SECONDS)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ChromaUnavailableError(
            f"无法连接 Chroma 向量库服务（POWERDESK_CHROMA_URL={url}）：{type(exc).__name__}: {exc}。"
            f"请确认服务已启动，或取消该设置以使用本地向量库。"
        ) from exc
    client = chromadb.HttpClient(host=parsed.hostname, port=port, ssl=parsed.scheme == "https",
                                 settings=settings)
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):  # bound every later request too
        session.timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    return client


@dataclass
class IngestReport:
    """What an ingestion run changed, per article (what people read) and per chunk (what was embedded)."""

    articles_added: list[str] = field(default_factory=list)
    articles_updated: list[str] = field(default_factory=list)
    articles_removed: list[str] = field(default_factory=list)
    articles_unchanged: int = 0
    chunks_added: int = 0
    chunks_updated: int = 0
    chunks_removed: int = 0
    errors: list[ArticleError] = field(default_factory=list)

    @property
    def added(self) -> int:
        return len(self.articles_added)

    @property
    def updated(self) -> int:
        return len(self.articles_updated)

    @property
    def removed(self) -> int:
        return len(self.articles_removed)

    def to_dict(self) -> dict:
        return {
            "added": self.added, "updated": self.updated, "removed": self.removed,
            "unchanged": self.articles_unchanged,
            "chunks": {"added": self.chunks_added, "updated": self.chunks_updated,
                       "removed": self.chunks_removed},
            "errors": [str(e) for e in self.errors],
        }


def _metadata(chunk: Chunk) -> dict:
    meta: dict = {
        "article_id": chunk.article_id, "title": chunk.title, "section": chunk.section,
        "text": chunk.text, "source": chunk.source, "category": chunk.category,
        "applies_to": ",".join(chunk.applies_to), "effective_date": chunk.effective_date,
        "keywords": "|".join(chunk.keywords), "path": chunk.path, "content_hash": chunk.content_hash,
    }
    for customer_category in CUSTOMER_CATEGORIES:  # flat booleans: filterable with a plain `where`
        meta[f"for_{customer_category}"] = customer_category in chunk.applies_to
    return meta


class KnowledgeStore:
    """The knowledge-base collection for one embedder."""

    def __init__(self, embedder: Embedder, client=None, collection_name: str | None = None) -> None:
        self.embedder = embedder
        self.client = client if client is not None else open_chroma_client()
        self.collection_name = collection_name or collection_name_for(embedder.name)
        self.collection = self.client.get_or_create_collection(
            name=self.collection_name,
            embedding_function=None,  # never Chroma's default: it downloads a model
            metadata={"hnsw:space": "cosine", "embedder": embedder.name},
        )

    # ---- ingestion -------------------------------------------------------------------------
    def _existing(self) -> dict[str, dict]:
        got = self.collection.get(include=["metadatas"])
        return {cid: (meta or {}) for cid, meta in zip(got["ids"], got["metadatas"] or [])}

    def ingest(self, articles_dir: Path | None = None,
               progress: Callable[[int], None] | None = None,
               on_total: Callable[[int], None] | None = None) -> IngestReport:
        """Bring the collection in line with the article files; only changed chunks are re-embedded."""
        loaded = load_articles(articles_dir)
        report = IngestReport(errors=list(loaded.errors))
        chunks = chunk_articles(loaded.articles)
        existing = self._existing()
        new_by_id = {c.chunk_id: c for c in chunks}

        # Chunks of a file that failed to parse stay as they were: a typo must not delete content.
        failed_paths = {f"{e.path.parent.name}/{e.path.name}" for e in loaded.errors}
        protected = {cid for cid, m in existing.items() if m.get("path") in failed_paths}
        protected_articles = {existing[cid].get("article_id") for cid in protected}

        to_embed = [c for c in chunks if existing.get(c.chunk_id, {}).get("content_hash") != c.content_hash]
        to_remove = [cid for cid in existing if cid not in new_by_id and cid not in protected]
        report.chunks_added = sum(1 for c in to_embed if c.chunk_id not in existing)
        report.chunks_updated = len(to_embed) - report.chunks_added
        report.chunks_removed = len(to_remove)

        old_articles = {m.get("article_id") for m in existing.values()}
        new_articles = {c.article_id for c in chunks}
        changed_articles = ({c.article_id for c in to_embed}
                            | {existing[cid].get("article_id") for cid in to_remove})
        report.articles_added = sorted(new_articles - old_articles)
        report.articles_removed = sorted(a for a in old_articles - new_articles
                                         if a not in protected_articles)
        report.articles_updated = sorted((changed_articles & new_articles) & old_articles)
        report.articles_unchanged = len(new_articles) - report.added - report.updated

        if on_total:
            on_total(len(to_embed))
        for start in range(0, len(to_embed), EMBED_BATCH):
            batch = to_embed[start:start + EMBED_BATCH]
            vectors = self.embedder.embed_documents([c.document for c in batch])
            self.collection.upsert(
                ids=[c.chunk_id for c in batch],
                embeddings=np.asarray(vectors, dtype=np.float32).tolist(),
                documents=[c.document for c in batch],
                metadatas=[_metadata(c) for c in batch],
            )
            if progress:
                progress(len(batch))
        if to_remove:
            self.collection.delete(ids=to_remove)
        return report

    # ---- reading -----------------------------------------------------------------------------
    def count(self) -> int:
        return self.collection.count()

    def all_chunks(self) -> list[Chunk]:
        """The stored chunks, read back from their metadata (what the retriever indexes and cites)."""
        got = self.collection.get(include=["metadatas"])
        chunks = []
        for cid, meta in sorted(zip(got["ids"], got["metadatas"] or []), key=lambda p: p[0]):
            meta = meta or {}
            chunks.append(Chunk(
                chunk_id=cid,
                article_id=str(meta.get("article_id", "")),
                title=str(meta.get("title", "")),
                section=str(meta.get("section", "")),
                text=str(meta.get("text", "")),
                source=str(meta.get("source", "")),
                category=str(meta.get("category", "")),
                applies_to=tuple(a for a in str(meta.get("applies_to", "")).split(",") if a),
                effective_date=str(meta.get("effective_date", "")),
                keywords=tuple(k for k in str(meta.get("keywords", "")).split("|") if k),
                path=str(meta.get("path", "")),
            ))
        return chunks

    def all_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors in the order of `ids` (the retriever keeps them in memory for exact search)."""
        got = self.collection.get(ids=list(ids), include=["embeddings"])
        by_id = {cid: vec for cid, vec in zip(got["ids"], got["embeddings"])}
        if not ids:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.asarray([by_id[cid] for cid in ids], dtype=np.float32)

    def query(self, vector: np.ndarray, n_results: int, customer_category: str | None = None
              ) -> list[tuple[str, float]]:
        """Nearest chunks by cosine similarity, optionally only those for one customer category."""
        where = {f"for_{customer_category}": True} if customer_category else None
        total = self.count()
        if total == 0:
            return []
        got = self.collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
            n_results=min(n_results, total), where=where, include=["distances"],
        )
        return [(cid, 1.0 - float(d)) for cid, d in zip(got["ids"][0], got["distances"][0])]
