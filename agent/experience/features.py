"""Per-customer features from the records, for every customer at once (guide §5.2, §8.3).

A handful of bulk queries (customers, bills, TOU bill lines summed in the database, payments,
conversations, work orders) turned into numpy arrays indexed by customer, so 100,000 customers
cost a few seconds, never one ORM query per customer. Each record keeps its id, grouped per
customer, so every tag built from these features can name the records behind it.

Usage figures are kWh read from bills the billing core computed; they describe the customer to
staff and feed the clustering — no amount a customer sees is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.models import ConversationRecord
from billing_core.db.models import (
    Bill,
    BillLine,
    BillStatus,
    Customer,
    Payment,
    PaymentChannel,
    PaymentStatus,
    WorkOrder,
    WorkOrderKind,
)

ZONE = ZoneInfo("Asia/Shanghai")
SUMMER_MONTHS = (7, 8, 9)  # Guangdong's summer peak: July–September
PEAK_CODES = ("tou_peak", "energy_peak", "energy_critical_peak")
TOU_CODES = (*PEAK_CODES, "tou_flat", "tou_valley", "energy_flat", "energy_valley")
PAYMENT_CHANNELS = tuple(c.value for c in PaymentChannel)
HOUR_BANDS = ("工作时间", "晚间", "夜间")  # 8–18, 18–23, 23–8 local time
REPEAT_WINDOW_DAYS = 7
_UNPAID = (BillStatus.ISSUED.value, BillStatus.PARTIALLY_PAID.value)


def _period_of(months_back: int, as_of: date) -> str:
    year, month = divmod(as_of.year * 12 + as_of.month - 1 - months_back, 12)
    return f"{year:04d}-{month + 1:02d}"


@dataclass
class Grouped:
    """Record ids grouped by customer row: `ids[starts[i]:starts[i+1]]` are customer i's."""

    ids: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, record_ids: np.ndarray, customers: int) -> Grouped:
        order = np.argsort(rows, kind="stable")
        starts = np.searchsorted(rows[order], np.arange(customers + 1))
        return cls(ids=record_ids[order], starts=starts)

    def of_customer(self, i: int, limit: int = 50) -> list[int]:
        lo, hi = int(self.starts[i]), int(self.starts[i + 1])
        return [int(x) for x in self.ids[lo:min(hi, lo + limit)]]


@dataclass
class FeatureFrame:
    """Features of `n` customers, row i = `account_nos[i]`."""

    as_of: datetime
    window_start: str  # first billing period in the window
    account_nos: np.ndarray
    category: np.ndarray
    capacity_kva: np.ndarray
    monthly_kwh: np.ndarray  # (n, window months), oldest first
    months: list[str]
    peak_kwh: np.ndarray
    tou_kwh: np.ndarray
    overdue_bills: np.ndarray
    late_payments: np.ndarray
    payments: np.ndarray
    payment_channels: np.ndarray  # (n, len(PAYMENT_CHANNELS)) counts
    contacts_12m: np.ndarray
    contacts_90d: np.ndarray
    channel_counts: np.ndarray  # (n, len(channels))
    channels: list[str]
    hour_bands: np.ndarray  # (n, 3)
    intent_counts: np.ndarray  # (n, len(intents))
    intents: list[str]
    repeat_contacts: np.ndarray
    handoffs: np.ndarray
    low_csat: np.ndarray
    csat_sum: np.ndarray
    csat_count: np.ndarray
    bill_questions: np.ndarray
    disputes: np.ndarray
    complaints: np.ndarray
    complaint_categories: np.ndarray  # (n, len(categories))
    categories: list[str]
    evidence: dict[str, Grouped] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.account_nos)

    @property
    def annual_kwh(self) -> np.ndarray:
        return self.monthly_kwh.sum(axis=1)

    def features_of(self, i: int) -> dict[str, float]:
        """The named features classification criteria test (`policy.FEATURES`)."""
        return {
            "capacity_kva": float(self.capacity_kva[i]), "annual_kwh": float(self.annual_kwh[i]),
            "overdue_bills": int(self.overdue_bills[i]), "late_payments_12m": int(self.late_payments[i]),
            "contacts_12m": int(self.contacts_12m[i]), "contacts_90d": int(self.contacts_90d[i]),
            "repeat_contacts_12m": int(self.repeat_contacts[i]), "complaints_12m": int(self.complaints[i]),
            "disputes_12m": int(self.disputes[i]), "low_csat_12m": int(self.low_csat[i]),
            "handoffs_12m": int(self.handoffs[i]),
        }

    def matrix(self) -> dict[str, np.ndarray]:
        """Every criterion feature as a column (for the vectorised class test)."""
        return {
            "capacity_kva": self.capacity_kva, "annual_kwh": self.annual_kwh,
            "overdue_bills": self.overdue_bills, "late_payments_12m": self.late_payments,
            "contacts_12m": self.contacts_12m, "contacts_90d": self.contacts_90d,
            "repeat_contacts_12m": self.repeat_contacts, "complaints_12m": self.complaints,
            "disputes_12m": self.disputes, "low_csat_12m": self.low_csat, "handoffs_12m": self.handoffs,
        }


def _index(keys: np.ndarray, sorted_keys: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Row of each key in the customer arrays, -1 when the key is no customer."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.clip(pos, 0, len(sorted_keys) - 1)
    found = sorted_keys[pos] == keys if len(sorted_keys) else np.zeros(len(keys), dtype=bool)
    return np.where(found, order[pos], -1)


def _count(rows: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    rows = rows[rows >= 0] if weights is None else rows
    if weights is not None:
        keep = rows >= 0
        return np.bincount(rows[keep], weights=weights[keep], minlength=n)
    return np.bincount(rows, minlength=n)


def _matrix(rows: np.ndarray, cols: np.ndarray, n: int, width: int,
            weights: np.ndarray | None = None) -> np.ndarray:
    out = np.zeros((n, width), dtype=np.float64)
    keep = (rows >= 0) & (cols >= 0)
    np.add.at(out, (rows[keep], cols[keep]), 1.0 if weights is None else weights[keep])
    return out


def load_features(session: Session, as_of: datetime, window_months: int = 12) -> FeatureFrame:
    """Every customer's features over the `window_months` billing periods before `as_of`."""
    if as_of.tzinfo is None:
        raise ValueError("as_of: must be timezone-aware")
    local_today = as_of.astimezone(ZONE).date()
    months = [_period_of(back, local_today) for back in range(window_months, 0, -1)]
    window_start, since = months[0], as_of - timedelta(days=30 * window_months + 15)
    month_col = {p: j for j, p in enumerate(months)}

    cust = session.execute(select(Customer.id, Customer.account_no, Customer.category,
                                  Customer.capacity_kva).order_by(Customer.id)).all()
    n = len(cust)
    cids = np.array([r[0] for r in cust], dtype=np.int64)
    account_nos = np.array([r[1] for r in cust], dtype=object)
    category = np.array([str(r[2].value if hasattr(r[2], "value") else r[2]) for r in cust], dtype=object)
    capacity = np.array([float(r[3] or 0) for r in cust], dtype=np.float64)
    cid_order = np.argsort(cids)
    cid_sorted = cids[cid_order]
    acct_order = np.argsort(account_nos.astype(str)) if n else np.zeros(0, dtype=np.int64)
    acct_sorted = account_nos.astype(str)[acct_order] if n else np.zeros(0, dtype=str)

    def by_cid(values: list[int]) -> np.ndarray:
        return _index(np.array(values, dtype=np.int64), cid_sorted, cid_order)

    def by_account(values: list[str | None]) -> np.ndarray:
        return _index(np.array([v or "" for v in values], dtype=str), acct_sorted, acct_order)

    evidence: dict[str, Grouped] = {}

    # Bills of the window (cancelled ones are no bill).
    bills = session.execute(select(Bill.id, Bill.customer_id, Bill.period, Bill.total_kwh, Bill.status,
                                   Bill.due_date).where(Bill.period >= window_start, Bill.period <= months[-1],
                                                        Bill.status != BillStatus.CANCELLED)).all()
    b_rows = by_cid([r[1] for r in bills])
    b_ids = np.array([r[0] for r in bills], dtype=np.int64)
    b_cols = np.array([month_col.get(r[2], -1) for r in bills], dtype=np.int64)
    b_kwh = np.array([float(r[3]) for r in bills], dtype=np.float64)
    monthly = _matrix(b_rows, b_cols, n, window_months, b_kwh)
    overdue_mask = np.array([str(getattr(r[4], "value", r[4])) in _UNPAID and r[5] is not None and r[5] < local_today
                             for r in bills], dtype=bool)
    overdue = _count(b_rows[overdue_mask], n)
    evidence["bill"] = Grouped.of(b_rows, b_ids, n)
    evidence["overdue_bill"] = Grouped.of(b_rows[overdue_mask], b_ids[overdue_mask], n)

    # TOU energy (peak vs all time-of-use lines), summed in the database.
    tou = session.execute(
        select(Bill.customer_id, BillLine.code, func.sum(BillLine.quantity))
        .join(Bill, BillLine.bill_id == Bill.id)
        .where(Bill.period >= window_start, Bill.period <= months[-1], BillLine.code.in_(TOU_CODES),
               Bill.status != BillStatus.CANCELLED)
        .group_by(Bill.customer_id, BillLine.code)).all()
    t_rows = by_cid([r[0] for r in tou])
    t_qty = np.array([float(r[2] or 0) for r in tou], dtype=np.float64)
    t_peak = np.array([r[1] in PEAK_CODES for r in tou], dtype=bool)
    tou_kwh = _count(t_rows, n, t_qty)
    peak_kwh = _count(t_rows, n, np.where(t_peak, t_qty, 0.0))

    # Payments of the window's bills: channel and timeliness.
    pays = session.execute(
        select(Payment.id, Payment.customer_id, Payment.channel, Payment.paid_at, Bill.due_date)
        .join(Bill, Payment.bill_id == Bill.id)
        .where(Bill.period >= window_start, Payment.status == PaymentStatus.SUCCEEDED)).all()
    p_rows = by_cid([r[1] for r in pays])
    p_ids = np.array([r[0] for r in pays], dtype=np.int64)
    channel_col = {c: j for j, c in enumerate(PAYMENT_CHANNELS)}
    p_cols = np.array([channel_col.get(str(getattr(r[2], "value", r[2])), -1) for r in pays], dtype=np.int64)
    p_late = np.array([r[4] is not None and _local_date(r[3]) > r[4] for r in pays], dtype=bool)
    payment_channels = _matrix(p_rows, p_cols, n, len(PAYMENT_CHANNELS))
    late = _count(p_rows[p_late], n)
    evidence["payment"] = Grouped.of(p_rows, p_ids, n)
    evidence["late_payment"] = Grouped.of(p_rows[p_late], p_ids[p_late], n)

    # Conversations of the window (the agent's records, every channel).
    convs = session.execute(
        select(ConversationRecord.id, ConversationRecord.account_no, ConversationRecord.channel,
               ConversationRecord.started_at, ConversationRecord.topic, ConversationRecord.intents,
               ConversationRecord.outcome, ConversationRecord.csat_score)
        .where(ConversationRecord.account_no.is_not(None), ConversationRecord.started_at >= since)
        .order_by(ConversationRecord.account_no, ConversationRecord.started_at)).all()
    c_rows = by_account([r[1] for r in convs])
    c_ids = np.array([r[0] for r in convs], dtype=np.int64)
    started = [_aware(r[3]) for r in convs]
    c_recent = np.array([s >= as_of - timedelta(days=90) for s in started], dtype=bool)
    channels = sorted({r[2] for r in convs})
    ch_col = {c: j for j, c in enumerate(channels)}
    c_ch = np.array([ch_col[r[2]] for r in convs], dtype=np.int64)
    hours = np.array([s.astimezone(ZONE).hour for s in started], dtype=np.int64)
    band = np.where((hours >= 8) & (hours < 18), 0, np.where((hours >= 18) & (hours < 23), 1, 2))
    intents = sorted({i for r in convs for i in (r[5] or []) if i})
    in_col = {c: j for j, c in enumerate(intents)}
    ir, ic = [], []
    for k, r in enumerate(convs):
        for name in dict.fromkeys(r[5] or []):
            if name in in_col:
                ir.append(c_rows[k])
                ic.append(in_col[name])
    intent_counts = _matrix(np.array(ir, dtype=np.int64), np.array(ic, dtype=np.int64), n, len(intents))
    outcome = [str(getattr(r[6], "value", r[6]) or "") for r in convs]
    c_handoff = np.array([o == "transferred" for o in outcome], dtype=bool)
    csat = np.array([r[7] if r[7] is not None else 0 for r in convs], dtype=np.int64)
    c_low = (csat >= 1) & (csat <= 2)
    c_bill = np.array([bool({"lookup_bill", "explain_bill"} & set(r[5] or [])) for r in convs], dtype=bool)
    # A repeat contact: the same customer about the same topic within the window of the previous one
    # (rows are ordered by account, then time).
    c_repeat = np.zeros(len(convs), dtype=bool)
    last_seen: dict[tuple[str, str], datetime] = {}
    for k, r in enumerate(convs):
        if r[4]:
            key = (r[1], r[4])
            before = last_seen.get(key)
            c_repeat[k] = before is not None and started[k] - before <= timedelta(days=REPEAT_WINDOW_DAYS)
            last_seen[key] = started[k]
    for name, mask in (("conversation", None), ("handoff", c_handoff), ("low_csat", c_low),
                       ("repeat_contact", c_repeat), ("bill_question", c_bill)):
        rows_m = c_rows if mask is None else c_rows[mask]
        ids_m = c_ids if mask is None else c_ids[mask]
        keep = rows_m >= 0
        evidence[name] = Grouped.of(rows_m[keep], ids_m[keep], n)

    # Work orders of the window: disputes and complaints with their category.
    orders = session.execute(
        select(WorkOrder.id, WorkOrder.account_no, WorkOrder.kind, WorkOrder.payload)
        .where(WorkOrder.account_no.is_not(None), WorkOrder.created_at >= since,
               WorkOrder.kind.in_([WorkOrderKind.DISPUTE, WorkOrderKind.COMPLAINT]))).all()
    w_rows = by_account([r[1] for r in orders])
    w_ids = np.array([r[0] for r in orders], dtype=np.int64)
    w_kind = np.array([str(getattr(r[2], "value", r[2])) for r in orders], dtype=object)
    w_complaint, w_dispute = w_kind == "complaint", w_kind == "dispute"
    categories = sorted({str((r[3] or {}).get("category") or "other") for r in orders if str(getattr(r[2], "value", r[2])) == "complaint"})
    cat_col = {c: j for j, c in enumerate(categories)}
    w_cat = np.array([cat_col.get(str((r[3] or {}).get("category") or "other"), -1) if w_complaint[k] else -1
                      for k, r in enumerate(orders)], dtype=np.int64)
    for name, mask in (("complaint", w_complaint), ("dispute", w_dispute)):
        keep = mask & (w_rows >= 0) if len(orders) else mask
        evidence[name] = Grouped.of(w_rows[keep], w_ids[keep], n)

    return FeatureFrame(
        as_of=as_of, window_start=window_start, account_nos=account_nos, category=category,
        capacity_kva=capacity, monthly_kwh=monthly, months=months, peak_kwh=peak_kwh, tou_kwh=tou_kwh,
        overdue_bills=overdue, late_payments=late, payments=_count(p_rows, n), payment_channels=payment_channels,
        contacts_12m=_count(c_rows, n), contacts_90d=_count(c_rows[c_recent], n),
        channel_counts=_matrix(c_rows, c_ch, n, len(channels)), channels=channels,
        hour_bands=_matrix(c_rows, band, n, 3), intent_counts=intent_counts, intents=intents,
        repeat_contacts=_count(c_rows[c_repeat], n), handoffs=_count(c_rows[c_handoff], n),
        low_csat=_count(c_rows[c_low], n), csat_sum=_count(c_rows, n, csat.astype(np.float64)),
        csat_count=_count(c_rows[csat > 0], n), bill_questions=_count(c_rows[c_bill], n),
        disputes=_count(w_rows[w_dispute], n), complaints=_count(w_rows[w_complaint], n),
        complaint_categories=_matrix(w_rows, w_cat, n, len(categories)), categories=categories,
        evidence=evidence,
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _local_date(value: datetime) -> date:
    return _aware(value).astimezone(ZONE).date()


__all__ = ["FeatureFrame", "Grouped", "load_features"]
