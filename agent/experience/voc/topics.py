"""High-frequency issue analysis (guide §8.4, §8.10; T/CI 1281 §5.2a): a period's customer messages
grouped into topics, each named by its top terms, with its count, the trend against the previous
period and masked examples.

Vectors: the knowledge base's packaged sentence embedder (`method="embedding"`, the default: it
groups paraphrases — 「电费怎么突然这么高」 with 「电费比上个月高了好多」 — that share few characters),
or character n-gram TF-IDF reduced by truncated SVD (`method="tfidf"`: Chinese has no spaces, so
2–3-character grams stand in for words; much faster, coarser). benchmarks/bench_voc_topics.py
measures both. Topics are always named from the TF-IDF grams. Identical messages are vectorised once and weighted by their count. The number of topics is
the k in `k_range` with the highest cosine silhouette coefficient (on a sample of at most
`SILHOUETTE_SAMPLE` distinct messages): the stated criterion, reported with the result.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.experience.voc.periods import customer_names, mask_text, period_bounds, previous_period
from agent.models import ConversationRecord, TurnRecord

K_RANGE = (2, 12)
SILHOUETTE_SAMPLE = 2000
SVD_DIMS = 100
EXAMPLES = 3
TERMS = 3
_NOT_TEXT = re.compile(r"[^\u4e00-\u9fffA-Za-z]+")
# A gram made only of these says how, not what (怎么, 我的, 为什): never a topic's name.
_FUNCTION_CHARS = frozenset("我你他她们的了吗呢啊吧呀这那个么怎什为要在是有和就都也还请帮下一好多")
_MIN_CHARS = 2  # 「是」, 「8000」 (a verification answer), 「5」 (a rating) say nothing about a topic


@dataclass(frozen=True)
class Message:
    text: str
    account_no: str | None


@dataclass(frozen=True)
class Topic:
    label: str  # the top terms, 「电费 / 缴费 / 多少」
    terms: tuple[str, ...]
    count: int
    previous_count: int
    examples: tuple[str, ...]  # masked

    @property
    def trend(self) -> str:
        if self.previous_count == 0:
            return "新增" if self.count else "—"
        change = (self.count - self.previous_count) * 100 / self.previous_count
        return f"{change:+.0f}%"


@dataclass
class TopicReport:
    period: str
    messages: int
    previous_messages: int
    distinct: int
    method: str
    k: int
    criterion: str
    silhouette: float | None
    topics: list[Topic] = field(default_factory=list)
    topic_of: dict[str, int] = field(default_factory=dict, repr=False)  # distinct text → index in `topics`


def clean(text: str) -> str:
    """What is vectorised: letters and Chinese characters only (numbers are 户号, amounts, answers)."""
    return _NOT_TEXT.sub(" ", text).strip()


def period_messages(session: Session, period: str) -> list[Message]:
    """The customers' messages in the conversations started in the period (as the satisfaction report
    and the KPIs count them), with the conversation's 户号."""
    start, end = period_bounds(period)
    rows = session.execute(
        select(TurnRecord.user_text, ConversationRecord.account_no)
        .join(ConversationRecord, ConversationRecord.id == TurnRecord.conversation_pk)
        .where(ConversationRecord.started_at >= start, ConversationRecord.started_at < end))
    return [Message(text, account) for text, account in rows if len(clean(text or "").replace(" ", "")) >= _MIN_CHARS]


class _Vectoriser:
    """TF-IDF of character 2–3-grams (for naming, always) and the clustering space (SVD or embedder)."""

    def __init__(self, method: str, seed: int) -> None:
        if method not in ("tfidf", "embedding"):
            raise ValueError(f"method: tfidf 或 embedding，不是 {method!r}")
        self.method, self.seed = method, seed

    def fit(self, texts: list[str]) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), min_df=2 if len(texts) > 50 else 1,
                                     max_features=30000, sublinear_tf=True)
        self.matrix = self.tfidf.fit_transform([clean(t) for t in texts])
        if self.method == "embedding":
            from knowledge_base.embeddings import get_embedder

            self.embedder = get_embedder()
            return self.space(texts)
        from sklearn.decomposition import TruncatedSVD

        dims = min(SVD_DIMS, self.matrix.shape[1] - 1, self.matrix.shape[0] - 1)
        self.svd = TruncatedSVD(n_components=dims, random_state=self.seed) if dims >= 2 else None
        reduced = self.svd.fit_transform(self.matrix) if self.svd else self.matrix.toarray()
        return _unit(reduced)

    def space(self, texts: list[str]) -> np.ndarray:
        if self.method == "embedding":
            return np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
        matrix = self.tfidf.transform([clean(t) for t in texts])
        return _unit(self.svd.transform(matrix) if self.svd else matrix.toarray())


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def _cluster(vectors: np.ndarray, weights: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    model = (KMeans(n_clusters=k, n_init=3, random_state=seed) if len(vectors) <= 5000
             else MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed))
    labels = model.fit_predict(vectors, sample_weight=weights)
    return labels, model.cluster_centers_


def choose_k(vectors: np.ndarray, weights: np.ndarray, k_range: tuple[int, int], seed: int
             ) -> tuple[int, float | None, np.ndarray, np.ndarray]:
    """The k of `k_range` with the highest cosine silhouette (sampled), with its labels and centres."""
    from sklearn.metrics import silhouette_score

    low, high = k_range[0], min(k_range[1], len(vectors) - 1)
    if high < max(low, 2):
        return 1, None, np.zeros(len(vectors), dtype=int), vectors.mean(axis=0, keepdims=True)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(vectors), size=min(SILHOUETTE_SAMPLE, len(vectors)), replace=False)
    best: tuple[int, float, np.ndarray, np.ndarray] | None = None
    for k in range(max(low, 2), high + 1):
        labels, centres = _cluster(vectors, weights, k, seed)
        if len(set(labels[sample])) < 2:
            continue
        score = float(silhouette_score(vectors[sample], labels[sample], metric="cosine"))
        if best is None or score > best[1]:
            best = (k, score, labels, centres)
    if best is None:
        return 1, None, np.zeros(len(vectors), dtype=int), vectors.mean(axis=0, keepdims=True)
    return best


def _top_terms(matrix, members: np.ndarray, weights: np.ndarray, overall: np.ndarray, names: np.ndarray) -> tuple[str, ...]:
    """The grams most over-represented in the cluster (weighted mean TF-IDF minus the overall mean);
    a gram inside a better one (「电」 in 「电费」) is skipped."""
    cluster = np.asarray(matrix[members].T @ weights[members]).ravel() / max(weights[members].sum(), 1)
    terms: list[str] = []
    for index in np.argsort(-(cluster - overall)):
        term = names[index].strip()
        if (len(term) < 2 or " " in term or set(term) <= _FUNCTION_CHARS
                or any(term in t or t in term for t in terms)):
            continue
        terms.append(term)
        if len(terms) == TERMS:
            break
    return tuple(terms)


def analyse(texts: Sequence[str], previous: Sequence[str] = (), *, period: str = "", method: str = "embedding",
            k_range: tuple[int, int] = K_RANGE, seed: int = 0, names: Iterable[str] = ()) -> TopicReport:
    """Topics of `texts`; `previous` (last period's messages) is assigned to the nearest topic for the trend."""
    counts = Counter(t.strip() for t in texts if t and t.strip())
    criterion = f"k∈[{k_range[0]},{k_range[1]}] 中余弦轮廓系数（silhouette，抽样≤{SILHOUETTE_SAMPLE}条不同消息）最大者"
    report = TopicReport(period=period, messages=sum(counts.values()), previous_messages=len(previous),
                         distinct=len(counts), method=method, k=0, criterion=criterion, silhouette=None)
    if not counts:
        return report
    unique = list(counts)
    weights = np.array([counts[t] for t in unique], dtype=float)
    vectoriser = _Vectoriser(method, seed)
    vectors = vectoriser.fit(unique)
    k, score, labels, centres = choose_k(vectors, weights, k_range, seed)
    report.k, report.silhouette = k, score

    previous_counts = Counter(t.strip() for t in previous if t and t.strip())
    before = np.zeros(k, dtype=int)
    if previous_counts:
        old = list(previous_counts)
        nearest = np.argmax(vectoriser.space(old) @ centres.T, axis=1)
        np.add.at(before, nearest, [previous_counts[t] for t in old])

    names_arr = vectoriser.tfidf.get_feature_names_out()
    overall = np.asarray(vectoriser.matrix.T @ weights).ravel() / weights.sum()
    masked_names = set(names)
    topics = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        if not len(members):
            continue
        terms = _top_terms(vectoriser.matrix, members, weights, overall, names_arr)
        ranked = members[np.argsort(-weights[members], kind="stable")]
        examples = tuple(mask_text(unique[i], masked_names)[:80] for i in ranked[:EXAMPLES])
        topics.append((cluster, Topic(label=" / ".join(terms) or "（其他）", terms=terms,
                                      count=int(weights[members].sum()), previous_count=int(before[cluster]),
                                      examples=examples)))
    topics.sort(key=lambda pair: -pair[1].count)
    report.topics = [topic for _, topic in topics]
    position = {cluster: index for index, (cluster, _) in enumerate(topics)}
    report.topic_of = {text: position[int(label)] for text, label in zip(unique, labels, strict=True)}
    return report


def topic_report(session: Session, period: str, *, method: str = "embedding", k_range: tuple[int, int] = K_RANGE,
                 seed: int = 0) -> TopicReport:
    """The period's topics from the turn records, trend against the previous period."""
    current = period_messages(session, period)
    previous = period_messages(session, previous_period(period))
    names = customer_names(session, [m.account_no for m in current])
    return analyse([m.text for m in current], [m.text for m in previous], period=period, method=method,
                   k_range=k_range, seed=seed, names=names)


def format_topics(report: TopicReport) -> str:
    lines = [f"# 高频问题分析 {report.period}", "",
             f"客户消息 {report.messages} 条（不同内容 {report.distinct} 条），上期 {report.previous_messages} 条；"
             f"向量：{'字符 n-gram TF-IDF + SVD' if report.method == 'tfidf' else '句向量（知识库嵌入模型）'}；"
             f"主题数 k={report.k}，选取标准：{report.criterion}"
             + (f"，轮廓系数 {report.silhouette:.3f}" if report.silhouette is not None else ""), "",
             "| 主题（高频词） | 消息数 | 占比 | 上期 | 趋势 | 示例（已脱敏） |", "|---|---|---|---|---|---|"]
    for topic in report.topics:
        share = topic.count * 100 / report.messages if report.messages else 0
        examples = "；".join(e.replace("|", "｜") for e in topic.examples)
        lines.append(f"| {topic.label} | {topic.count} | {share:.1f}% | {topic.previous_count} | {topic.trend} | {examples} |")
    if not report.topics:
        lines.append("| （本期无客户消息） | 0 | — | — | — | — |")
    return "\n".join(lines)
