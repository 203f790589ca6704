"""`powerdesk kb ingest` and `powerdesk kb search` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knowledge_base.cli import app
from knowledge_base.service import default_retriever

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, articles_dir: Path) -> None:
    monkeypatch.setenv("POWERDESK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("POWERDESK_KB_ARTICLES_DIR", str(articles_dir))
    monkeypatch.setenv("POWERDESK_EMBEDDER", "use-m3")
    default_retriever.cache_clear()


def test_ingest_reports_counts_and_is_incremental(articles_dir: Path) -> None:
    first = runner.invoke(app, ["ingest"])
    assert first.exit_code == 0, first.output
    assert "新增 4，更新 0，删除 0" in first.stdout
    (articles_dir / "tariff" / "tariff-fixture-demand.md").unlink()
    second = runner.invoke(app, ["ingest"])
    assert "新增 0，更新 0，删除 1" in second.stdout


def test_ingest_names_a_broken_file_and_carries_on(articles_dir: Path) -> None:
    (articles_dir / "tariff" / "tariff-bad.md").write_text("no front matter here\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 0
    assert "tariff-bad.md" in result.stderr
    assert "新增 4" in result.stdout


def test_search_json_has_citations() -> None:
    result = runner.invoke(app, ["search", "支付寶可唔可以交電費", "--json", "-k", "2"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["hits"][0]["article_id"] == "payment-fixture-alipay"
    assert payload["hits"][0]["citation"]["source"] == "测试资料（缴费渠道）"
    assert len(payload["hits"]) <= 2


def test_search_text_output_and_category_filter() -> None:
    result = runner.invoke(app, ["search", "最大需量基本电费", "--category", "residential"])
    assert result.exit_code == 0, result.output
    assert "tariff-fixture-demand" not in result.stdout
    assert "出处：" in result.stdout


@pytest.mark.parametrize(("args", "field"), [
    (["search", "   "], "query"),
    (["search", "电费", "-k", "0"], "-k"),
    (["search", "电费", "--category", "vip"], "--category"),
    (["search", "电费", "--embedder", "word2vec"], "--embedder"),
])
def test_bad_input_exits_2_naming_the_field(args: list[str], field: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert field in result.stderr
