"""The tag system (guide §8.3) and the derived classes (§5.1), computed from the records and stored.

Tags per dimension — 渠道特征, 用电行为, 业务交互, 服务诉求, 心理偏好 — each with the records that made
it (`evidence`: record kind + ids), so staff can see why a customer carries it. `refresh_tags`
recomputes every customer in one pass over `features.load_features` and rewrites the profiles
table with the time it was computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from agent.experience.features import HOUR_BANDS, PAYMENT_CHANNELS, SUMMER_MONTHS, FeatureFrame, load_features
from agent.experience.models import CustomerProfile
from agent.experience.policy import ClassificationPolicy, load_policy
from agent.replies import templates
from tools.channels import channel_spec
from tools.intake_complaint import CATEGORY_CN

DIMENSIONS = ("渠道特征", "用电行为", "业务交互", "服务诉求", "心理偏好")
PAYMENT_CN = {"wechat_pay": "微信", "alipay": "支付宝", "bank_withholding": "银行代扣", "counter": "营业厅柜台",
              "prepaid": "预存抵扣", "bank_transfer": "银行转账"}
SUMMER_PEAK_RATIO = 1.3  # summer months' average ≥ 1.3 × the other months' average
PEAK_SHARE_HIGH = 0.4  # peak-period energy share at or above this is 峰段用电偏高
MAX_EVIDENCE = 50  # ids listed per record kind (counts stay exact in `value`)
INSERT_BATCH = 5000


def _channel_label(name: str) -> str:
    try:
        return channel_spec(name).label
    except ValueError:
        return name


def _intent_label(intent: str) -> str:
    # The option words of the clarifying question (templates.yaml `choice_<intent>`); read directly,
    # since importing agent.flows would load the whole dialogue engine into a batch job.
    template = templates().get(f"choice_{intent}")
    return template.text if template is not None else intent


def _tag(dimension: str, code: str, label: str, value: Any, evidence: list[dict[str, Any]]) -> dict[str, Any]:
    return {"dimension": dimension, "code": code, "label": label, "value": value,
            "evidence": [e for e in evidence if e["ids"]]}


def derived_classes(frame: FeatureFrame, policy: ClassificationPolicy) -> list[np.ndarray]:
    """For each derived class (policy order), a boolean column: which customers are in it."""
    columns = frame.matrix()
    out = []
    for cls in policy.derived_classes:
        hits = [columns[c.feature] >= c.min for c in cls.criteria]
        out.append(np.logical_and.reduce(hits) if cls.match == "all" else np.logical_or.reduce(hits))
    return out


@dataclass
class TagRefresh:
    customers: int
    tagged: int
    tags: int
    computed_at: datetime
    by_class: dict[str, int]
    policy_version: str


def build_profiles(frame: FeatureFrame, policy: ClassificationPolicy) -> Iterator[dict[str, Any]]:
    """The profile rows (account_no, tags, classes, features) of every customer in `frame`, one at a
    time (the caller writes them in batches, so 100,000 customers' tags are never all in memory)."""
    n, ev = frame.n, frame.evidence
    annual = frame.annual_kwh
    billed_months = (frame.monthly_kwh > 0).sum(axis=1)
    avg = np.divide(annual, billed_months, out=np.zeros(n), where=billed_months > 0)
    summer_cols = [j for j, p in enumerate(frame.months) if int(p[5:]) in SUMMER_MONTHS]
    other_cols = [j for j in range(len(frame.months)) if j not in summer_cols]
    summer_avg = frame.monthly_kwh[:, summer_cols].mean(axis=1) if summer_cols else np.zeros(n)
    other_avg = frame.monthly_kwh[:, other_cols].mean(axis=1) if other_cols else np.zeros(n)
    summer_peak = (summer_avg >= SUMMER_PEAK_RATIO * other_avg) & (summer_avg > 0)
    peak_month = frame.monthly_kwh.argmax(axis=1)
    peak_share = np.divide(frame.peak_kwh, frame.tou_kwh, out=np.zeros(n), where=frame.tou_kwh > 0)
    main_channel = frame.channel_counts.argmax(axis=1) if frame.channels else np.zeros(n, dtype=int)
    channels_used = (frame.channel_counts > 0).sum(axis=1)
    band = frame.hour_bands.argmax(axis=1)
    main_payment = frame.payment_channels.argmax(axis=1)
    csat_mean = np.divide(frame.csat_sum, frame.csat_count, out=np.zeros(n), where=frame.csat_count > 0)
    top_intents = np.argsort(-frame.intent_counts, axis=1)[:, :3] if frame.intents else None
    top_category = frame.complaint_categories.argmax(axis=1) if frame.categories else None
    in_class = derived_classes(frame, policy)
    codes = [c.code for c in policy.derived_classes]

    def ids(kind: str, i: int) -> dict[str, Any]:
        return {"kind": kind, "ids": ev[kind].of_customer(i, MAX_EVIDENCE)}

    for i in range(n):
        tags: list[dict[str, Any]] = []
        contacts = int(frame.contacts_12m[i])
        if contacts:
            conv = [ids("conversation", i)]
            name = frame.channels[int(main_channel[i])]
            share = float(frame.channel_counts[i, int(main_channel[i])]) / contacts
            tags.append(_tag("渠道特征", "main_channel", f"常用渠道：{_channel_label(name)}",
                             {"channel": name, "share": round(share, 3), "contacts": contacts}, conv))
            if channels_used[i] >= 2:
                tags.append(_tag("渠道特征", "multi_channel", f"多渠道（{int(channels_used[i])}个）",
                                 int(channels_used[i]), conv))
            tags.append(_tag("渠道特征", "contact_hours", f"联系时段：{HOUR_BANDS[int(band[i])]}",
                             HOUR_BANDS[int(band[i])], conv))
        if billed_months[i]:
            bills = [ids("bill", i)]
            tags.append(_tag("用电行为", "monthly_kwh", f"月均用电{avg[i]:.0f}千瓦时",
                             {"average": round(float(avg[i]), 1),
                              "profile": [round(float(x), 1) for x in frame.monthly_kwh[i]],
                              "months": frame.months}, bills))
            if summer_peak[i]:
                tags.append(_tag("用电行为", "summer_peak", "夏季用电高峰",
                                 {"summer_avg": round(float(summer_avg[i]), 1), "other_avg": round(float(other_avg[i]), 1),
                                  "peak_month": frame.months[int(peak_month[i])]}, bills))
            if frame.tou_kwh[i] > 0:
                share = float(peak_share[i])
                label = f"峰段用电占比{share:.0%}" + ("（偏高）" if share >= PEAK_SHARE_HIGH else "")
                tags.append(_tag("用电行为", "tou_peak_share", label, round(share, 3), bills))
        if frame.bill_questions[i]:
            tags.append(_tag("业务交互", "bill_questions", f"咨询账单{int(frame.bill_questions[i])}次",
                             int(frame.bill_questions[i]), [ids("bill_question", i)]))
        if frame.disputes[i]:
            tags.append(_tag("业务交互", "disputes", f"电费异议{int(frame.disputes[i])}次", int(frame.disputes[i]),
                             [ids("dispute", i)]))
        if frame.payments[i]:
            pay = PAYMENT_CHANNELS[int(main_payment[i])]
            tags.append(_tag("业务交互", "payment_channel", f"缴费方式：{PAYMENT_CN.get(pay, pay)}", pay,
                             [ids("payment", i)]))
            late = int(frame.late_payments[i])
            timeliness = "按时缴费" if late == 0 else ("偶有逾期" if late <= 2 else "经常逾期")
            tags.append(_tag("业务交互", "payment_timeliness", timeliness,
                             {"late": late, "payments": int(frame.payments[i])},
                             [ids("late_payment", i) if late else ids("payment", i)]))
        if frame.overdue_bills[i]:
            tags.append(_tag("业务交互", "overdue", f"逾期未缴{int(frame.overdue_bills[i])}期",
                             int(frame.overdue_bills[i]), [ids("overdue_bill", i)]))
        if top_intents is not None and contacts:
            named = [frame.intents[int(j)] for j in top_intents[i] if frame.intent_counts[i, int(j)] > 0]
            if named:
                tags.append(_tag("服务诉求", "top_intents", "主要诉求：" + "、".join(_intent_label(x) for x in named),
                                 {x: int(frame.intent_counts[i, frame.intents.index(x)]) for x in named},
                                 [ids("conversation", i)]))
        if frame.complaints[i] and top_category is not None:
            cat = frame.categories[int(top_category[i])]
            tags.append(_tag("服务诉求", "complaint_category", f"投诉{int(frame.complaints[i])}次，主要为{CATEGORY_CN.get(cat, cat)}",
                             {"complaints": int(frame.complaints[i]), "category": cat}, [ids("complaint", i)]))
        if frame.handoffs[i] >= 2 or (contacts >= 2 and frame.handoffs[i] * 2 >= contacts and frame.handoffs[i]):
            tags.append(_tag("心理偏好", "prefers_person", "偏好人工服务",
                             {"handoffs": int(frame.handoffs[i]), "contacts": contacts}, [ids("handoff", i)]))
        if frame.low_csat[i] and csat_mean[i] <= 2.5:
            tags.append(_tag("心理偏好", "low_csat", f"评价偏低（平均{csat_mean[i]:.1f}分）",
                             {"low": int(frame.low_csat[i]), "mean": round(float(csat_mean[i]), 2)},
                             [ids("low_csat", i)]))
        classes = [codes[j] for j in range(len(codes)) if in_class[j][i]]
        yield {"account_no": str(frame.account_nos[i]), "tags": tags, "classes": classes,
               "features": frame.features_of(i)}


def refresh_tags(session: Session, as_of: datetime, policy: ClassificationPolicy | None = None,
                 frame: FeatureFrame | None = None) -> TagRefresh:
    """Recompute every customer's tags and derived classes and store them (caller commits).

    The portrait columns are cleared: a portrait describes features that have just changed, so
    `powerdesk cx portraits refresh` runs after this."""
    policy = policy or load_policy()
    frame = frame if frame is not None else load_features(session, as_of, policy.window_months)
    rows = build_profiles(frame, policy)
    table = CustomerProfile.__table__
    connection = session.connection()  # Core: 100,000 rows, no unit of work
    connection.execute(delete(table))
    by_class: dict[str, int] = {c.code: 0 for c in policy.derived_classes}
    customers = tagged = total = 0
    while batch := list(islice(rows, INSERT_BATCH)):
        for row in batch:
            for code in row["classes"]:
                by_class[code] += 1
            customers, tagged, total = customers + 1, tagged + bool(row["tags"]), total + len(row["tags"])
        connection.execute(insert(table), [
            {**row, "policy_version": policy.version, "computed_at": as_of, "cluster_no": None,
             "portrait_run_id": None} for row in batch])
    return TagRefresh(customers=customers, tagged=tagged, tags=total, computed_at=as_of, by_class=by_class,
                      policy_version=policy.version)
