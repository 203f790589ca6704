"""The knowledge base against a real Chroma server process (POWERDESK_CHROMA_URL)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from knowledge_base.retriever import KnowledgeRetriever
from knowledge_base.service import open_store
from knowledge_base.vector_store import CONNECT_TIMEOUT_SECONDS, ChromaUnavailableError, open_chroma_client
from tests.servers.chroma import chroma_server
from tests.servers.ports import free_port


@pytest.mark.chroma_server
def test_ingest_and_search_through_a_chroma_server(monkeypatch: pytest.MonkeyPatch,
                                                   articles_dir: Path) -> None:
    with chroma_server() as server:
        monkeypatch.setenv("POWERDESK_CHROMA_URL", server.url)
        store = open_store("use-m3")
        session = store.client._server._session  # the HTTP client: every request has a bounded wait
        assert session.timeout.connect == CONNECT_TIMEOUT_SECONDS
        report = store.ingest(articles_dir)
        assert report.added == 4 and store.count() == 8
        # a second client (another process would do the same) sees the same data, and nothing changes
        again = open_store("use-m3").ingest(articles_dir)
        assert (again.added, again.updated, again.removed) == (0, 0, 0)
        hits = KnowledgeRetriever(open_store("use-m3")).search("支付宝可以交电费吗", k=2).hits
        assert hits[0].article_id == "payment-fixture-alipay"
        assert hits[0].citation.source == "测试资料（缴费渠道）"
        assert any(server.data_dir.iterdir())  # the server holds the vectors


def test_unreachable_server_fails_fast_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("POWERDESK_CHROMA_URL", url)
    start = time.monotonic()
    with pytest.raises(ChromaUnavailableError) as info:
        open_store("use-m3")
    assert time.monotonic() - start < 5
    assert "POWERDESK_CHROMA_URL" in str(info.value) and url in str(info.value)


def test_blackholed_server_times_out_instead_of_hanging() -> None:
    start = time.monotonic()
    with pytest.raises(ChromaUnavailableError):
        open_chroma_client("http://10.255.255.1:8000")  # non-routable: connect never completes
    assert time.monotonic() - start < 6


def test_malformed_url_is_named() -> None:
    with pytest.raises(ChromaUnavailableError, match="POWERDESK_CHROMA_URL"):
        open_chroma_client("ftp://")
