"""`powerdesk eval retrieval`: the knowledge-base retrieval eval as a CLI command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from evals.retrieval.runner import (
    QUERIES_PATH, TARGET_HIT_AT_3, TARGET_P95_MS, QuerySetError, compare, markdown_table,
    run_retrieval_eval,
)


def retrieval(
    embedder: str = typer.Option("use-m3", "--embedder", help="use-m3 | e5-small | st:/模型目录"),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid | bm25 | dense"),
    fusion: str = typer.Option("rrf", "--fusion", help="rrf | convex"),
    queries: Path = typer.Option(QUERIES_PATH, "--queries", help="标注好的查询集 YAML"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON"),
    compare_all: bool = typer.Option(False, "--compare", help="对比所有检索方案，输出 Markdown 表"),
    show_misses: bool = typer.Option(False, "--misses", help="列出未命中的查询"),
) -> None:
    """检索评测：hit@1、hit@3、MRR、单次查询 p50/p95 延迟。"""
    try:
        if compare_all:
            reports = compare(queries)
            if as_json:
                typer.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2))
            else:
                typer.echo(markdown_table(reports))
            return
        report = run_retrieval_eval(embedder=embedder, mode=mode, fusion=fusion, queries_path=queries)
    except QuerySetError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"--embedder/--mode/--fusion: {exc}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(f"方案 {report.variant}，查询 {report.queries} 条")
        typer.echo(f"hit@1 {report.hit_at_1:.3f}  hit@3 {report.hit_at_3:.3f}（目标 ≥ {TARGET_HIT_AT_3}）  "
                   f"MRR {report.mrr:.3f}")
        typer.echo(f"本地大脑作答正确 {report.answered:.3f}，判为未覆盖 {report.not_covered} 条")
        typer.echo(f"延迟 p50 {report.p50_ms:.1f} ms  p95 {report.p95_ms:.1f} ms（目标 ≤ {TARGET_P95_MS:.0f} ms）  "
                   f"CPU p50 {report.cpu_p50_ms:.1f} ms  p95 {report.cpu_p95_ms:.1f} ms")
        typer.echo("按类型 hit@3：" + "  ".join(f"{t} {v:.2f}" for t, v in report.by_tag.items()))
        if show_misses:
            for miss in report.misses:
                typer.echo(f"  未命中：{miss['query']} → {miss['got']}（应为 {miss['expected']}）")
        typer.echo("达标" if report.meets_targets else "未达标")
    if not report.meets_targets:
        raise typer.Exit(1)
