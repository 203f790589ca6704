"""Agent test fixtures: a migrated SQLite database with billing-core bills, a knowledge base over the
real articles (fast embedder, local Chroma in a temp dir, built once), and an agent factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.agent import Agent
from agent.state import InMemoryStateStore
from tests.agent.world import NOW, World, build_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(f"sqlite:///{tmp_path / 'agent.db'}")


@pytest.fixture(scope="session")
def knowledge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Any]]:
    from knowledge_base.embeddings import get_embedder
    from knowledge_base.retriever import KnowledgeRetriever
    from knowledge_base.vector_store import KnowledgeStore, open_chroma_client

    store = KnowledgeStore(get_embedder("use-m3"),
                           open_chroma_client(url="", path=tmp_path_factory.mktemp("chroma")))
    store.ingest(None)
    retriever = KnowledgeRetriever(store)
    yield lambda: retriever


@pytest.fixture
def make_agent(world: World) -> Callable[..., Agent]:
    def build(**kwargs: Any) -> Agent:
        kwargs.setdefault("store", InMemoryStateStore())
        kwargs.setdefault("brain", "local")
        kwargs.setdefault("clock", lambda: NOW)
        kwargs.setdefault("knowledge", _no_knowledge)
        return Agent(sessions=world.sessions, **kwargs)

    return build


def _no_knowledge() -> Any:
    raise AssertionError("this test did not expect a knowledge-base search")
