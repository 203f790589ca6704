"""search_knowledge_base as a tool: real articles, a real (local) Chroma store, citations."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from knowledge_base.embeddings import get_embedder
from knowledge_base.retriever import KnowledgeRetriever
from knowledge_base.vector_store import KnowledgeStore, open_chroma_client
from tests.tools.conftest import ACCOUNT_A, ACCOUNT_C, World
from tools.registry import call_tool

ARTICLES = Path(__file__).resolve().parents[2] / "knowledge_base" / "articles"
PICKED = ["dispute/dispute-response-time.md", "complaint/complaint-response-time.md",
          "payment/payment-channels-overview.md", "due/due-late-fee-residential.md",
          "due/due-late-fee-business.md", "privacy/privacy-identity-verification.md"]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeRetriever:
    root = tmp_path_factory.mktemp("kb")
    for name in PICKED:
        target = root / "articles" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTICLES / name, target)
    store = KnowledgeStore(get_embedder("use-m3"), open_chroma_client(url="", path=root / "chroma"))
    store.ingest(root / "articles")
    return KnowledgeRetriever(store)


def _ctx(world: World, retriever: KnowledgeRetriever, conversation: str = "kb-1"):
    getter: Callable[[], KnowledgeRetriever] = lambda: retriever  # noqa: E731
    return world.ctx(conversation, knowledge=getter)


def test_policy_question_returns_cited_passages_without_verification(world: World, retriever) -> None:
    result = call_tool(_ctx(world, retriever), "search_knowledge_base", {"query": "电费异议多久答复"})
    assert result.status == "ok"
    top = result.passages[0]
    assert top.article_id == "dispute-response-time"
    assert "5个工作日" in top.text and "dispute-response-time" in top.citation
    assert top.citation in result.message


def test_verified_customer_gets_articles_for_their_category(world: World, retriever) -> None:
    resident = _ctx(world, retriever, "kb-a")
    call_tool(resident, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"})
    business = _ctx(world, retriever, "kb-c")
    call_tool(business, "verify_identity", {"account_no": ACCOUNT_C, "last4": "0000"})
    for_resident = call_tool(resident, "search_knowledge_base", {"query": "违约金怎么算", "k": 1})
    for_business = call_tool(business, "search_knowledge_base", {"query": "违约金怎么算", "k": 1})
    assert (for_resident.category, for_business.category) == ("residential", "ci_two_part")
    assert for_resident.passages[0].article_id == "due-late-fee-residential"
    assert for_business.passages[0].article_id == "due-late-fee-business"


def test_empty_query_names_the_field(world: World, retriever) -> None:
    result = call_tool(_ctx(world, retriever), "search_knowledge_base", {"query": "？？？"})
    assert result.status == "invalid_input" and result.field == "query"


def test_rasa_search_action_answers_with_the_cited_passage(world: World, retriever) -> None:
    import asyncio

    from tests.tools.test_rasa_actions import payload
    from tools.rasa_actions import build_executor

    executor = build_executor(world.sessions, knowledge=lambda: retriever)
    call = payload("action_search_knowledge_base", "kb-rasa", {}, text="投诉多久有人联系我")
    result = asyncio.run(executor.run(call)).model_dump()
    [response] = result["responses"]
    passages = response["custom"]["result"]["passages"]
    assert passages[0]["article_id"] == "complaint-response-time"
    assert "24小时" in response["text"] and passages[0]["citation"] in response["text"]
    assert {e["name"]: e["value"] for e in result["events"]}["tool_status"] == "ok"
