"""`powerdesk kb`: ingest the articles into the vector store and search them from a shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from knowledge_base.retriever import DEFAULT_K, MAX_K, EmptyQueryError, KnowledgeRetriever, validate_category
from knowledge_base.vector_store import ChromaUnavailableError

app = typer.Typer(help="知识库：导入文章、检索问题（离线混合检索，带出处）。", no_args_is_help=True)

EMBEDDER_HELP = "向量模型：use-m3 | e5-small | st:/模型目录（默认取 POWERDESK_EMBEDDER）"


def _fail(message: str, code: int) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@app.command()
def ingest(
    embedder: Optional[str] = typer.Option(None, "--embedder", help=EMBEDDER_HELP),
    articles_dir: Optional[Path] = typer.Option(None, "--articles-dir", help="文章目录（默认为内置文章）"),
) -> None:
    """导入/更新知识库文章：只重新向量化有变化的段落，报告新增/更新/删除数量。"""
    from tqdm import tqdm

    from knowledge_base.service import open_store

    if articles_dir is not None and not articles_dir.is_dir():
        _fail(f"--articles-dir: 目录不存在：{articles_dir}", 2)
    try:
        store = open_store(embedder)
    except ChromaUnavailableError as exc:
        _fail(str(exc), 1)
    except (ValueError, FileNotFoundError) as exc:
        _fail(f"--embedder: {exc}", 2)
    bar = tqdm(total=0, unit="段", desc="向量化", leave=True)

    def on_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    try:
        report = store.ingest(articles_dir, progress=bar.update, on_total=on_total)
    finally:
        bar.close()
    for error in report.errors:
        typer.echo(f"已跳过（格式错误）：{error}", err=True)
    typer.echo(
        f"文章：新增 {report.added}，更新 {report.updated}，删除 {report.removed}，未变 {report.articles_unchanged}；"
        f"段落：新增 {report.chunks_added}，更新 {report.chunks_updated}，删除 {report.chunks_removed}；"
        f"跳过文件 {len(report.errors)}（集合 {store.collection_name}，共 {store.count()} 段）"
    )


@app.command()
def search(
    query: str = typer.Argument(..., help="客户的问题，例如「阶梯电价怎么算」"),
    k: int = typer.Option(DEFAULT_K, "-k", "--k", help=f"返回条数（1–{MAX_K}）"),
    category: Optional[str] = typer.Option(None, "--category", help="客户类别：residential | ci_single | "
                                           "ci_two_part | agricultural"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON"),
    embedder: Optional[str] = typer.Option(None, "--embedder", help=EMBEDDER_HELP),
) -> None:
    """检索知识库，列出最相关的文章段落和出处。"""
    from knowledge_base.service import open_retriever

    if not 1 <= k <= MAX_K:
        _fail(f"-k: 必须在 1 到 {MAX_K} 之间，收到 {k}", 2)
    try:
        validate_category(category)
    except ValueError as exc:
        _fail(f"--category: {exc}", 2)
    if not query.strip():
        _fail("query: 查询内容为空，请输入要查询的问题", 2)
    try:
        retriever: KnowledgeRetriever
        retriever, _ = open_retriever(embedder)
    except ChromaUnavailableError as exc:
        _fail(str(exc), 1)
    except (ValueError, FileNotFoundError) as exc:
        _fail(f"--embedder: {exc}", 2)
    try:
        result = retriever.search(query, k=k, category=category)
    except (EmptyQueryError, ValueError) as exc:
        _fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    if result.truncated:
        typer.echo("（问题过长，已截取开头和结尾检索）", err=True)
    if not result.hits:
        typer.echo("知识库中没有找到相关内容。")
        return
    for hit in result.hits:
        typer.echo(f"{hit.rank}. 《{hit.title}》· {hit.section}  [{hit.article_id}]  得分 {hit.score:.4f}")
        typer.echo(f"   {hit.text.replace(chr(10), ' ')[:160]}")
        typer.echo(f"   出处：{hit.citation.source}（生效日期 {hit.citation.effective_date}）")
