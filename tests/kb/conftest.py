"""Knowledge-base test fixtures: a small article set copied to a temp dir, and a local Chroma store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge_base.embeddings import get_embedder
from knowledge_base.vector_store import KnowledgeStore, open_chroma_client

FIXTURE_ARTICLES = Path(__file__).resolve().parent / "fixtures" / "articles"


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    target = tmp_path / "articles"
    shutil.copytree(FIXTURE_ARTICLES, target)
    return target


@pytest.fixture
def local_store(tmp_path: Path) -> KnowledgeStore:
    """A store in a fresh local persistent Chroma (the default backend), with the fast embedder."""
    return KnowledgeStore(get_embedder("use-m3"), open_chroma_client(url="", path=tmp_path / "chroma"))
