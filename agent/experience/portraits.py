"""Customer portraits (guide §8.6): customers clustered on their usage and interaction features.

k-means on standardised features; the number of clusters is the k in 2..8 with the highest
silhouette coefficient among those whose every cluster holds at least `MIN_CLUSTER_SHARE` of the
customers (a few outliers on their own would otherwise win the silhouette). The silhouette is
computed on a fixed random sample of at most `SILHOUETTE_SAMPLE` customers, so the choice costs
the same for 2,000 or 100,000 customers. Each cluster is described in Chinese
by the features whose cluster mean stands furthest from the population mean (in standard
deviations), e.g. 「用电量大、峰段用电占比高」.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from agent.experience.features import SUMMER_MONTHS, FeatureFrame, load_features
from agent.experience.models import CustomerProfile, PortraitRun
from agent.experience.policy import ClassificationPolicy, load_policy
from agent.experience.tags import TagRefresh, refresh_tags

K_RANGE = range(2, 9)
FIT_SAMPLE = 20000  # k-means is fitted on at most this many customers, then every customer is assigned
SILHOUETTE_SAMPLE = 2000
SEED = 0
MIN_CLUSTER_SHARE = 0.02  # a "cluster" of a handful of outliers is not a kind of customer
CRITERION = ("轮廓系数（silhouette）最大，k 取 2–8，且每群至少占客户的2%（几户离群客户不成画像）；"
             "标准化特征上的 k-means（至多2万户拟合、全部客户归群），轮廓系数在固定随机抽取的至多2000户上计算")
TOP_FEATURES = 3
MIN_DEVIATION = 0.2  # a feature describes a cluster only if its mean is ≥ 0.2 SD from everyone's

# name, high phrase, low phrase
PORTRAIT_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("monthly_kwh_log", "用电量大", "用电量小"),
    ("summer_ratio", "夏季用电明显增加", "用电季节性弱"),
    ("peak_share", "峰段用电占比高", "峰段用电占比低"),
    ("contacts_log", "来电频繁", "很少来电"),
    ("handoff_ratio", "偏好人工服务", "自助为主"),
    ("low_csat", "评价偏低", "评价正常"),
    ("tickets_log", "异议投诉较多", "少有异议投诉"),
    ("late_ratio", "缴费常逾期", "缴费按时"),
    ("overdue", "有逾期未缴账单", "无欠费"),
    ("business", "工商业用户为主", "居民用户为主"),
)


class TooFewCustomers(ValueError):
    """Clustering needs more customers than clusters; the message says how many there are."""


def portrait_matrix(frame: FeatureFrame) -> np.ndarray:
    """The (n, len(PORTRAIT_FEATURES)) feature matrix the clustering runs on, before scaling."""
    n = frame.n
    billed = (frame.monthly_kwh > 0).sum(axis=1)
    avg = np.divide(frame.annual_kwh, billed, out=np.zeros(n), where=billed > 0)
    summer = [j for j, p in enumerate(frame.months) if int(p[5:]) in SUMMER_MONTHS]
    other = [j for j in range(len(frame.months)) if j not in summer]
    s_avg = frame.monthly_kwh[:, summer].mean(axis=1) if summer else np.zeros(n)
    o_avg = frame.monthly_kwh[:, other].mean(axis=1) if other else np.zeros(n)
    contacts = frame.contacts_12m.astype(np.float64)
    payments = frame.payments.astype(np.float64)
    return np.column_stack([
        np.log1p(avg),
        np.clip(np.divide(s_avg, o_avg, out=np.ones(n), where=o_avg > 0), 0, 5),
        np.divide(frame.peak_kwh, frame.tou_kwh, out=np.zeros(n), where=frame.tou_kwh > 0),
        np.log1p(contacts),
        np.divide(frame.handoffs, contacts, out=np.zeros(n), where=contacts > 0),
        np.clip(frame.low_csat, 0, 5).astype(np.float64),
        np.log1p(frame.complaints + frame.disputes),
        np.divide(frame.late_payments, payments, out=np.zeros(n), where=payments > 0),
        np.clip(frame.overdue_bills, 0, 6).astype(np.float64),
        (frame.category != "residential").astype(np.float64),
    ])


@dataclass
class PortraitResult:
    run_id: int | None
    k: int
    score: float
    scores: dict[int, float]
    labels: np.ndarray
    clusters: list[dict[str, Any]]
    customers: int


def cluster(matrix: np.ndarray) -> tuple[int, float, dict[int, float], np.ndarray, np.ndarray]:
    """(k, its silhouette, silhouette per k, labels, cluster centres in SD units) for `matrix`."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = len(matrix)
    if n < 10:
        raise TooFewCustomers(f"customers: {n} 户，至少需要10户才能聚类画像")
    mean, sd = matrix.mean(axis=0), matrix.std(axis=0)
    z = (matrix - mean) / np.where(sd > 0, sd, 1.0)
    rng = np.random.default_rng(SEED)
    fit_rows = np.sort(rng.choice(n, size=min(n, FIT_SAMPLE), replace=False))
    fitted = z[fit_rows]
    scored = rng.choice(len(fit_rows), size=min(len(fit_rows), SILHOUETTE_SAMPLE), replace=False)
    scores: dict[int, float] = {}
    fits: dict[int, Any] = {}
    for k in K_RANGE:
        if k >= len(fit_rows):
            break
        model = KMeans(n_clusters=k, n_init=2, random_state=SEED).fit(fitted)
        labels = model.labels_
        if len(set(labels[scored].tolist())) < 2:
            continue
        scores[k] = float(silhouette_score(fitted[scored], labels[scored]))
        fits[k] = model
    if not scores:
        raise TooFewCustomers("customers: 客户特征完全相同，无法分群")
    sized = [k for k in scores if np.bincount(fits[k].labels_, minlength=k).min() >= MIN_CLUSTER_SHARE * len(fit_rows)]
    best = max(sized or scores, key=lambda k: (scores[k], -k))
    model = fits[best]
    return best, scores[best], scores, model.predict(z), model.cluster_centers_


def describe(centres: np.ndarray, labels: np.ndarray, matrix: np.ndarray) -> list[dict[str, Any]]:
    """Each cluster: its size and share, its top features with their z-score, and a Chinese name."""
    out = []
    n = len(labels)
    for no, centre in enumerate(centres):
        members = labels == no
        order = np.argsort(-np.abs(centre))
        top = [int(j) for j in order[:TOP_FEATURES] if abs(centre[j]) >= MIN_DEVIATION]
        phrases = [PORTRAIT_FEATURES[j][1] if centre[j] > 0 else PORTRAIT_FEATURES[j][2] for j in top]
        name = "、".join(phrases) if phrases else "各项特征接近平均"
        out.append({
            "no": no, "label": name, "size": int(members.sum()), "share": round(float(members.sum()) / n, 4),
            "top_features": [{"feature": PORTRAIT_FEATURES[j][0], "z": round(float(centre[j]), 2),
                              "phrase": PORTRAIT_FEATURES[j][1] if centre[j] > 0 else PORTRAIT_FEATURES[j][2]}
                             for j in top],
            "means": {PORTRAIT_FEATURES[j][0]: round(float(matrix[members, j].mean()), 3) if members.any() else 0.0
                      for j in range(len(PORTRAIT_FEATURES))},
        })
    return out


def refresh_portraits(session: Session, as_of: datetime, policy: ClassificationPolicy | None = None,
                      frame: FeatureFrame | None = None) -> PortraitResult:
    """Cluster every customer, store the run and each profile's cluster (caller commits).

    Needs the profiles of `powerdesk cx tags refresh`; a customer without one gets none."""
    policy = policy or load_policy()
    if not session.scalar(select(func.count()).select_from(CustomerProfile)):
        raise TooFewCustomers("cx_customer_profiles: 还没有客户标签，请先运行 powerdesk cx tags refresh")
    frame = frame if frame is not None else load_features(session, as_of, policy.window_months)
    matrix = portrait_matrix(frame)
    k, score, scores, labels, centres = cluster(matrix)
    clusters = describe(centres, labels, matrix)
    run = PortraitRun(computed_at=as_of, customers=frame.n, k=k, criterion=CRITERION, score=score,
                      scores={str(key): round(value, 4) for key, value in scores.items()}, clusters=clusters)
    session.add(run)
    session.flush()
    table = CustomerProfile.__table__
    statement = (update(table).where(table.c.account_no == bindparam("acct"))
                 .values(cluster_no=bindparam("cluster"), portrait_run_id=bindparam("run")))
    session.connection().execute(statement, [
        {"acct": str(a), "cluster": int(c), "run": run.id} for a, c in zip(frame.account_nos, labels, strict=True)])
    return PortraitResult(run_id=run.id, k=k, score=score, scores=scores, labels=labels, clusters=clusters,
                          customers=frame.n)


def refresh_all(session: Session, as_of: datetime, policy: ClassificationPolicy | None = None
                ) -> tuple[TagRefresh, PortraitResult]:
    """Tags, derived classes and portraits from one read of the records (`powerdesk cx refresh`)."""
    policy = policy or load_policy()
    frame = load_features(session, as_of, policy.window_months)
    tags = refresh_tags(session, as_of, policy, frame=frame)
    return tags, refresh_portraits(session, as_of, policy, frame=frame)


def latest_run(session: Session) -> PortraitRun | None:
    return session.scalar(select(PortraitRun).order_by(PortraitRun.id.desc()).limit(1))
