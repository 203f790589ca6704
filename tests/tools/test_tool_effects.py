"""Every tool's declared effect (`ToolSpec.writes`, `confirm_as`) against what it really does to a
real database: each tool is called, successfully, for a verified customer, and every table but the
audit log is compared before and after. A new tool without a sample call here fails the test, and
so does a tool that changes rows while declared a read (the LLM brain would count it as a read and
run it unconfirmed) or one declared a write that changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge_base.embeddings import get_embedder
from knowledge_base.retriever import KnowledgeRetriever
from knowledge_base.vector_store import KnowledgeStore, open_chroma_client
from tests.tools.conftest import ACCOUNT_B, World
from tools.context import ToolContext
from tools.models import AuditEvent
from tools.registry import CONFIRMED_TOOLS, TOOLS, WRITE_TOOLS, call_tool

ARTICLES = Path(__file__).resolve().parents[2] / "knowledge_base" / "articles"

# A call that succeeds for each tool (status), made by customer B (no WeChat bound) after verification on WeChat
# with an openid not bound yet (so bind_wechat binds). verify_identity is called unverified.
CALLS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "verify_identity": ({"method": "account_secret", "account_no": ACCOUNT_B, "last4": "9000"}, {"verified"}),
    "bind_wechat": ({}, {"bound"}),
    "lookup_bill": ({"period": "2026-05"}, {"ok"}),
    "explain_bill": ({"period": "2026-05"}, {"ok"}),
    "forecast_bill": ({}, {"ok", "not_found"}),
    "usage_insights": ({}, {"ok", "not_found"}),
    "saving_advice": ({}, {"ok", "not_found"}),
    "payment_status": ({"period": "2026-05"}, {"ok"}),
    "open_dispute": ({"period": "2026-05", "category": "reading_wrong", "reason": "读数比实际多"}, {"opened"}),
    "intake_complaint": ({"category": "service_attitude", "description": "营业厅工作人员态度差"}, {"opened"}),
    "contact_info": ({}, {"ok"}),
    "change_contact_phone": ({"new_phone": "13712349000"}, {"changed"}),  # same tail: later tools verify with it
    "transfer_to_human": ({"reason": "customer_asked", "summary": "客户要求人工"}, {"transferred"}),
    "search_knowledge_base": ({"query": "电费异议多久答复"}, {"ok"}),
}
# A failed verification writes too (the attempt counts towards the lock-out).
FAILED_VERIFY = {"method": "account_secret", "account_no": ACCOUNT_B, "last4": "0000"}


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeRetriever:
    root = tmp_path_factory.mktemp("kb-effects")
    target = root / "articles" / "dispute" / "dispute-response-time.md"
    target.parent.mkdir(parents=True)
    shutil.copy(ARTICLES / "dispute" / "dispute-response-time.md", target)
    store = KnowledgeStore(get_embedder("use-m3"), open_chroma_client(url="", path=root / "chroma"))
    store.ingest(root / "articles")
    return KnowledgeRetriever(store)


def _snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit log, as sortable tuples."""
    with sessions() as session:
        metadata = MetaData()
        metadata.reflect(bind=session.get_bind())
        return {name: sorted(tuple(map(repr, row)) for row in session.execute(select(table)))
                for name, table in metadata.tables.items() if name != AuditEvent.__tablename__}


def _changed(sessions: sessionmaker[Session], action: Callable[[], Any]) -> tuple[Any, list[str]]:
    """The action's result and the tables whose rows it changed."""
    before = _snapshot(sessions)
    result = action()
    after = _snapshot(sessions)
    return result, sorted(name for name in after if after[name] != before.get(name))


def test_every_tool_has_a_sample_call() -> None:
    assert set(CALLS) == {spec.name for spec in TOOLS}, "add a succeeding sample call for the new tool"


def test_declared_writes_are_what_the_tools_change(world: World, retriever: KnowledgeRetriever) -> None:
    changed: dict[str, list[str]] = {}
    for spec in TOOLS:
        conversation = f"effects-{spec.name}"
        ctx = world.ctx(conversation, channel="wechat", identity=f"openid-new-{spec.name}",
                        knowledge=lambda: retriever)
        if spec.name != "verify_identity":
            assert call_tool(ctx, "verify_identity", CALLS["verify_identity"][0]).status == "verified"
        arguments, succeeded = CALLS[spec.name]
        result, tables = _changed(world.sessions, lambda: call_tool(ctx, spec.name, arguments))
        assert result.status in succeeded, (spec.name, result)
        changed[spec.name] = tables
    undeclared = {name: tables for name, tables in changed.items() if tables and name not in WRITE_TOOLS}
    assert not undeclared, f"tools that write but are declared reads (writes=False): {undeclared}"
    idle = sorted(name for name in WRITE_TOOLS if not changed[name])
    assert not idle, f"tools declared writes=True that changed nothing: {idle}"


def test_a_failed_verification_is_a_write_too(world: World) -> None:
    ctx: ToolContext = world.ctx("effects-failed-verify")
    result, tables = _changed(world.sessions, lambda: call_tool(ctx, "verify_identity", FAILED_VERIFY))
    assert result.status == "failed" and tables


def test_confirmed_tools_are_the_customers_writes() -> None:
    # What the customer asks for and must read back; the hand-off and verification run when called.
    assert CONFIRMED_TOOLS == {"bind_wechat", "open_dispute", "intake_complaint", "change_contact_phone"}
    assert CONFIRMED_TOOLS <= WRITE_TOOLS
