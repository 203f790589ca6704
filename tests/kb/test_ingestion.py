"""Incremental ingestion into a local persistent Chroma: only what changed is touched."""

from __future__ import annotations

from pathlib import Path

from knowledge_base.vector_store import KnowledgeStore


def test_first_ingest_adds_everything_and_rerun_changes_nothing(local_store: KnowledgeStore,
                                                                 articles_dir: Path) -> None:
    first = local_store.ingest(articles_dir)
    assert first.added == 4 and first.updated == 0 and first.removed == 0
    assert first.chunks_added == local_store.count() == 8
    second = local_store.ingest(articles_dir)
    assert (second.added, second.updated, second.removed) == (0, 0, 0)
    assert second.articles_unchanged == 4 and second.chunks_updated == 0


def test_changing_one_article_updates_only_it(local_store: KnowledgeStore, articles_dir: Path) -> None:
    local_store.ingest(articles_dir)
    path = articles_dir / "payment" / "payment-fixture-alipay.md"
    path.write_text(path.read_text(encoding="utf-8").replace("输入用电户号后付款即可。", "输入户号，核对户名后付款。"),
                    encoding="utf-8")
    report = local_store.ingest(articles_dir)
    assert report.articles_updated == ["payment-fixture-alipay"]
    assert (report.added, report.updated, report.removed) == (0, 1, 0)
    assert (report.chunks_added, report.chunks_updated, report.chunks_removed) == (0, 1, 0)
    stored = {c.chunk_id: c for c in local_store.all_chunks()}
    assert "核对户名" in stored["payment-fixture-alipay#00"].text


def test_deleting_an_article_removes_its_chunks(local_store: KnowledgeStore, articles_dir: Path) -> None:
    local_store.ingest(articles_dir)
    (articles_dir / "tariff" / "tariff-fixture-demand.md").unlink()
    report = local_store.ingest(articles_dir)
    assert report.articles_removed == ["tariff-fixture-demand"]
    assert report.chunks_removed == 2
    assert not any(c.article_id == "tariff-fixture-demand" for c in local_store.all_chunks())


def test_broken_file_is_named_skipped_and_its_old_content_kept(local_store: KnowledgeStore,
                                                                articles_dir: Path) -> None:
    local_store.ingest(articles_dir)
    path = articles_dir / "dispute" / "dispute-fixture-refund.md"
    path.write_text(path.read_text(encoding="utf-8").replace("title: 电费多收了怎么退？", "title: [电费多收"),
                    encoding="utf-8")
    (articles_dir / "payment" / "payment-fixture-new.md").write_text(
        (articles_dir / "payment" / "payment-fixture-alipay.md").read_text(encoding="utf-8")
        .replace("id: payment-fixture-alipay", "id: payment-fixture-new"), encoding="utf-8")
    report = local_store.ingest(articles_dir)
    assert len(report.errors) == 1 and "dispute-fixture-refund.md" in str(report.errors[0])
    assert report.articles_added == ["payment-fixture-new"]
    assert report.removed == 0  # a typo must not delete what was there
    assert any(c.article_id == "dispute-fixture-refund" for c in local_store.all_chunks())


def test_collections_are_separate_per_embedder(local_store: KnowledgeStore) -> None:
    assert local_store.collection_name == "kb-use-m3"
    assert local_store.collection.metadata["embedder"] == "use-m3"
