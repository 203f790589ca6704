"""Run the labelled query set against the knowledge-base retriever and report quality and latency.

Quality is per article (a query is answered when an article it is labelled with is in the top k);
latency is one `search` call end to end (normalisation, embedding, BM25, Chroma, fusion), measured
after a short warm-up, on whatever machine runs it. `answered` goes one step further, to what the
customer is told: the share of queries whose local-brain answer (the passage the knowledge flow
picks from the top 5 and checks for coverage) is a labelled article.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from agent.flows.knowledge import KB_CANDIDATES, choose_passage
from knowledge_base.articles import load_articles
from knowledge_base.embeddings import get_embedder
from knowledge_base.retriever import KnowledgeRetriever
from knowledge_base.vector_store import KnowledgeStore, open_chroma_client, var_dir

QUERIES_PATH = Path(__file__).resolve().parent / "queries.yaml"
TARGET_HIT_AT_3 = 0.95
TARGET_P95_MS = 30.0
MRR_DEPTH = 10
WARMUP_QUERIES = 5


class QuerySetError(ValueError):
    """The query file is malformed or labels an article that does not exist."""


@dataclass(frozen=True)
class EvalQuery:
    query: str
    expected: tuple[str, ...]
    tags: tuple[str, ...] = ()
    category: str | None = None


@dataclass
class EvalReport:
    variant: str
    queries: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    p50_ms: float
    p95_ms: float
    cpu_p50_ms: float = 0.0  # CPU time of the process per query: what wall time would be on an idle box
    cpu_p95_ms: float = 0.0
    # The local brain's answer (`agent.flows.knowledge.choose_passage` over the top KB_CANDIDATES):
    # the share of queries it answers with a labelled article, and how many it declines as uncovered.
    answered: float = 0.0
    not_covered: int = 0
    by_tag: dict[str, float] = field(default_factory=dict)
    misses: list[dict] = field(default_factory=list)

    @property
    def meets_targets(self) -> bool:
        return self.hit_at_3 >= TARGET_HIT_AT_3 and self.p95_ms <= TARGET_P95_MS

    def to_dict(self) -> dict:
        data = asdict(self)
        data["meets_targets"] = self.meets_targets
        data["targets"] = {"hit_at_3": TARGET_HIT_AT_3, "p95_ms": TARGET_P95_MS}
        return data


def load_queries(path: Path = QUERIES_PATH, known_articles: set[str] | None = None) -> list[EvalQuery]:
    """Parse and validate the query file; every label must name an existing article."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise QuerySetError(f"{path}: cannot read query set: {exc}") from exc
    items = raw.get("queries") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise QuerySetError(f"{path}: expected a list under 'queries'")
    queries: list[EvalQuery] = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not str(item.get("query", "")).strip():
            raise QuerySetError(f"{path}: entry {n}: field 'query' is missing or empty")
        expected = item.get("expected")
        if isinstance(expected, str):
            expected = [expected]
        if not expected or not all(isinstance(e, str) for e in expected):
            raise QuerySetError(
                f"{path}: entry {n} ({item['query']!r}): field 'expected' must list article ids")
        if known_articles is not None:
            unknown = [e for e in expected if e not in known_articles]
            if unknown:
                raise QuerySetError(f"{path}: entry {n} ({item['query']!r}): field 'expected' names unknown "
                                    f"article(s) {unknown}")
        queries.append(EvalQuery(str(item["query"]), tuple(expected), tuple(item.get("tags") or ()),
                                 item.get("category")))
    return queries


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def evaluate(retriever: KnowledgeRetriever, queries: list[EvalQuery], variant: str = "") -> EvalReport:
    for q in queries[:WARMUP_QUERIES]:
        retriever.search(q.query, k=MRR_DEPTH, category=q.category)
    latencies: list[float] = []
    cpu_times: list[float] = []
    hit1 = hit3 = 0
    reciprocal = 0.0
    answered = not_covered = 0
    tag_hits: dict[str, list[int]] = defaultdict(list)
    misses: list[dict] = []
    for q in queries:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = retriever.search(q.query, k=MRR_DEPTH, category=q.category)
        latencies.append((time.perf_counter() - start) * 1000)
        cpu_times.append((time.process_time() - cpu_start) * 1000)
        ranked = [h.article_id for h in result.hits]
        passages = [{"article_id": h.article_id, "title": h.title, "section": h.section, "text": h.text}
                    for h in result.hits[:KB_CANDIDATES]]
        chosen = choose_passage(q.query, passages) if passages else None
        answered += chosen is not None and chosen["article_id"] in q.expected
        not_covered += chosen is None
        rank = next((i for i, a in enumerate(ranked, start=1) if a in q.expected), None)
        hit1 += rank == 1
        hit3 += rank is not None and rank <= 3
        reciprocal += 1 / rank if rank else 0.0
        for tag in q.tags or ("untagged",):
            tag_hits[tag].append(int(rank is not None and rank <= 3))
        if rank is None or rank > 3:
            misses.append({"query": q.query, "normalized": result.normalized_query,
                           "expected": list(q.expected), "got": ranked[:3], "rank": rank})
    n = len(queries) or 1
    return EvalReport(
        variant=variant, queries=len(queries), hit_at_1=round(hit1 / n, 4), hit_at_3=round(hit3 / n, 4),
        mrr=round(reciprocal / n, 4), p50_ms=round(statistics.median(latencies), 2) if latencies else 0.0,
        p95_ms=round(_percentile(latencies, 95), 2),
        cpu_p50_ms=round(statistics.median(cpu_times), 2) if cpu_times else 0.0,
        cpu_p95_ms=round(_percentile(cpu_times, 95), 2),
        answered=round(answered / n, 4), not_covered=not_covered,
        by_tag={t: round(sum(v) / len(v), 4) for t, v in sorted(tag_hits.items())}, misses=misses,
    )


def build_eval_store(embedder: str, articles_dir: Path | None = None, chroma_dir: Path | None = None
                     ) -> KnowledgeStore:
    """A local store just for the eval (under var/), synced with the articles."""
    client = open_chroma_client(url="", path=chroma_dir or var_dir() / "eval-chroma")
    store = KnowledgeStore(get_embedder(embedder), client)
    store.ingest(articles_dir)
    return store


def run_retrieval_eval(embedder: str = "use-m3", mode: str = "hybrid", fusion: str = "rrf",
                       queries_path: Path = QUERIES_PATH, articles_dir: Path | None = None,
                       chroma_dir: Path | None = None, **options) -> EvalReport:
    known = {a.id for a in load_articles(articles_dir).articles}
    queries = load_queries(queries_path, known)
    store = build_eval_store(embedder, articles_dir, chroma_dir)
    retriever = KnowledgeRetriever(store, mode=mode, fusion=fusion, **options)  # type: ignore[arg-type]
    name = "bm25" if mode == "bm25" else f"{mode}/{embedder}" + (f"/{fusion}" if mode == "hybrid" else "")
    extra = ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    return evaluate(retriever, queries, variant=name + (f"[{extra}]" if extra else ""))


COMPARISON_VARIANTS: tuple[dict, ...] = (
    {"embedder": "use-m3", "mode": "bm25"},
    {"embedder": "use-m3", "mode": "dense"},
    {"embedder": "e5-small", "mode": "dense"},
    {"embedder": "use-m3", "mode": "hybrid", "fusion": "rrf"},
    {"embedder": "use-m3", "mode": "hybrid", "fusion": "rrf", "pinyin_correction": False},
    {"embedder": "use-m3", "mode": "hybrid", "fusion": "rrf", "rrf_k": 10},
    {"embedder": "use-m3", "mode": "hybrid", "fusion": "convex", "convex_alpha": 0.7},
    {"embedder": "use-m3", "mode": "hybrid", "fusion": "rrf", "dense_backend": "chroma"},
    {"embedder": "e5-small", "mode": "hybrid", "fusion": "rrf"},
    {"embedder": "e5-small", "mode": "hybrid", "fusion": "convex", "convex_alpha": 0.7},
)


def compare(queries_path: Path = QUERIES_PATH, articles_dir: Path | None = None) -> list[EvalReport]:
    return [run_retrieval_eval(queries_path=queries_path, articles_dir=articles_dir, **v)
            for v in COMPARISON_VARIANTS]


def markdown_table(reports: list[EvalReport]) -> str:
    lines = ["| variant | hit@1 | hit@3 | MRR | p50 ms | p95 ms | CPU p50 ms | CPU p95 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {r.variant} | {r.hit_at_1:.3f} | {r.hit_at_3:.3f} | {r.mrr:.3f} | "
                     f"{r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.cpu_p50_ms:.1f} | {r.cpu_p95_ms:.1f} |")
    return "\n".join(lines)
