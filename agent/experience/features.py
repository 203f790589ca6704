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
from functools import cached_property
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection, Float, String, and_, case, cast, func, select, type_coerce
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

    @cached_property
    def annual_kwh(self) -> np.ndarray:
        return self.monthly_kwh.sum(axis=1)

    @cached_property
    def _feature_table(self) -> tuple[list[str], list[list[float]]]:
        columns = self.matrix()
        names = list(columns)
        # One conversion for everyone: rows of plain floats, not a numpy scalar per customer and feature.
        return names, np.column_stack([columns[k] for k in names]).astype(np.float64).tolist()

    def features_of(self, i: int) -> dict[str, float]:
        """The named features classification criteria test (`policy.FEATURES`)."""
        names, rows = self._feature_table
        return dict(zip(names, rows[i], strict=True))

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


def _epoch(column: Any, dialect: str) -> Any:
    """Seconds since 1970 of a timestamp or date column, computed by the database (so a million
    payments are not turned into Python datetimes one by one)."""
    if dialect == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return func.extract("epoch", column)


FETCH_ROWS = 100_000  # rows per fetch: the records become numpy arrays chunk by chunk, never all as tuples
_DTYPES = {"i": np.int64, "f": np.float64, "o": object}


def _column(values: tuple[Any, ...], kind: str) -> np.ndarray:
    if kind == "o":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if kind == "f":
        return np.fromiter((np.nan if v is None else float(v) for v in values), dtype=np.float64, count=len(values))
    return np.array(values, dtype=np.int64)


def _columns(connection: Connection, statement: Any, kinds: str) -> list[np.ndarray]:
    """The result as one numpy array per column (`kinds`: i int, f float with None as NaN, o object).

    Straight from the DB-API cursor in chunks: the selected columns are plain (cast / type_coerce),
    and a Row — or even a tuple kept — per record costs more than the query at a million records."""
    result = connection.execute(statement)
    parts: list[list[np.ndarray]] = [[] for _ in kinds]
    try:
        cursor = result.cursor
        while rows := cursor.fetchmany(FETCH_ROWS):
            for j, (values, kind) in enumerate(zip(zip(*rows, strict=True), kinds, strict=True)):
                parts[j].append(_column(values, kind))
    finally:
        result.close()
    return [np.concatenate(p) if p else np.zeros(0, dtype=_DTYPES[k]) for p, k in zip(parts, kinds, strict=True)]


def _codes(values: list[Any]) -> tuple[list[str], np.ndarray]:
    """Distinct values (sorted) and each value's index among them."""
    if len(values) == 0:
        return [], np.zeros(0, dtype=np.int64)
    names, inverse = np.unique(np.array([str(v) for v in values], dtype=object), return_inverse=True)
    return [str(x) for x in names], inverse.astype(np.int64)


def load_features(session: Session, as_of: datetime, window_months: int = 12) -> FeatureFrame:
    """Every customer's features over the `window_months` billing periods before `as_of`."""
    if as_of.tzinfo is None:
        raise ValueError("as_of: must be timezone-aware")
    connection = session.connection()
    dialect = connection.dialect.name
    local_today = as_of.astimezone(ZONE).date()
    months = [_period_of(back, local_today) for back in range(window_months, 0, -1)]
    window_start, since = months[0], as_of - timedelta(days=30 * window_months + 15)
    now_s = as_of.timestamp()
    month_col = {p: j for j, p in enumerate(months)}
    bills_t, lines_t, pays_t = Bill.__table__.c, BillLine.__table__.c, Payment.__table__.c
    conv_t, orders_t, cust_t = ConversationRecord.__table__.c, WorkOrder.__table__.c, Customer.__table__.c
    in_window = (bills_t.period >= window_start, bills_t.period <= months[-1],
                 type_coerce(bills_t.status, String) != BillStatus.CANCELLED.value)

    cids_l, accounts_l, category_l, capacity_l = _columns(connection, select(
        cust_t.id, cust_t.account_no, type_coerce(cust_t.category, String),
        cast(cust_t.capacity_kva, Float)).order_by(cust_t.id), "ioof")
    n = len(cids_l)
    cids = np.array(cids_l, dtype=np.int64)
    account_nos = np.array(accounts_l, dtype=object)
    category = np.array(category_l, dtype=object)
    capacity = np.nan_to_num(capacity_l)
    cid_order = np.argsort(cids)
    cid_sorted = cids[cid_order]
    acct_str = np.array(accounts_l, dtype=str) if n else np.zeros(0, dtype=str)
    acct_order = np.argsort(acct_str)
    acct_sorted = acct_str[acct_order]

    def by_cid(values: list[int]) -> np.ndarray:
        return _index(np.array(values, dtype=np.int64), cid_sorted, cid_order)

    def by_account(values: list[str | None]) -> np.ndarray:
        return _index(np.array([v or "" for v in values], dtype=str), acct_sorted, acct_order)

    evidence: dict[str, Grouped] = {}

    # Bills of the window (cancelled ones are no bill); overdue decided by the database.
    overdue_expr = case((and_(type_coerce(bills_t.status, String).in_(_UNPAID), bills_t.due_date < local_today), 1),
                        else_=0)
    b_id, b_cid, b_period, b_kwh_l, b_over = _columns(connection, select(
        bills_t.id, bills_t.customer_id, bills_t.period, cast(bills_t.total_kwh, Float), overdue_expr)
        .where(*in_window), "iiofi")
    b_rows = by_cid(b_cid)
    b_ids = np.array(b_id, dtype=np.int64)
    periods, period_idx = _codes(b_period)
    period_cols = np.array([month_col.get(p, -1) for p in periods], dtype=np.int64)
    b_cols = period_cols[period_idx] if len(period_idx) else np.zeros(0, dtype=np.int64)
    monthly = _matrix(b_rows, b_cols, n, window_months, np.nan_to_num(b_kwh_l))
    overdue_mask = np.array(b_over, dtype=bool)
    overdue = _count(b_rows[overdue_mask], n)
    evidence["bill"] = Grouped.of(b_rows, b_ids, n)
    evidence["overdue_bill"] = Grouped.of(b_rows[overdue_mask], b_ids[overdue_mask], n)

    # TOU energy (peak vs all time-of-use lines), summed in the database.
    t_cid, t_code, t_sum = _columns(connection, select(
        bills_t.customer_id, lines_t.code, cast(func.sum(lines_t.quantity), Float))
        .select_from(BillLine.__table__.join(Bill.__table__, lines_t.bill_id == bills_t.id))
        .where(*in_window, lines_t.code.in_(TOU_CODES)).group_by(bills_t.customer_id, lines_t.code), "iof")
    t_rows = by_cid(t_cid)
    t_qty = np.nan_to_num(t_sum)
    t_peak = np.array([code in PEAK_CODES for code in t_code], dtype=bool)
    tou_kwh = _count(t_rows, n, t_qty)
    peak_kwh = _count(t_rows, n, np.where(t_peak, t_qty, 0.0))

    # Payments of the window's bills: channel, and late = paid after the due date's local midnight.
    p_id, p_cid, p_channel, p_paid, p_due = _columns(connection, select(
        pays_t.id, pays_t.customer_id, type_coerce(pays_t.channel, String), _epoch(pays_t.paid_at, dialect),
        _epoch(bills_t.due_date, dialect))
        .select_from(Payment.__table__.join(Bill.__table__, pays_t.bill_id == bills_t.id))
        .where(bills_t.period >= window_start, type_coerce(pays_t.status, String) == PaymentStatus.SUCCEEDED.value), "iioff")
    p_rows = by_cid(p_cid)
    p_ids = np.array(p_id, dtype=np.int64)
    channel_col = {c: j for j, c in enumerate(PAYMENT_CHANNELS)}
    names, p_idx = _codes(p_channel)
    p_cols = np.array([channel_col.get(c, -1) for c in names], dtype=np.int64)[p_idx] if names else p_idx
    due_s = np.where(np.isnan(p_due), np.inf, p_due)
    # A date's epoch is its UTC midnight; the next local (UTC+8) midnight is 16 hours later.
    p_late = p_paid >= due_s + 16 * 3600
    payment_channels = _matrix(p_rows, p_cols, n, len(PAYMENT_CHANNELS))
    late = _count(p_rows[p_late], n)
    evidence["payment"] = Grouped.of(p_rows, p_ids, n)
    evidence["late_payment"] = Grouped.of(p_rows[p_late], p_ids[p_late], n)

    # Conversations of the window (the agent's records, every channel); the topic is the task asked.
    c_id, c_acct, c_channel, c_start, c_topic, c_outcome, c_csat = _columns(connection, select(
        conv_t.id, conv_t.account_no, conv_t.channel, _epoch(conv_t.started_at, dialect), conv_t.topic,
        type_coerce(conv_t.outcome, String), conv_t.csat_score)
        .where(conv_t.account_no.is_not(None), conv_t.started_at >= since), "ioofooo")
    c_rows = by_account(c_acct)
    c_ids = np.array(c_id, dtype=np.int64)
    started_s = c_start
    c_recent = started_s >= now_s - 90 * 86400
    channels, c_ch = _codes(c_channel)
    hours = ((started_s + 8 * 3600) // 3600 % 24).astype(np.int64)
    band = np.where((hours >= 8) & (hours < 18), 0, np.where((hours >= 18) & (hours < 23), 1, 2))
    topics, c_top = _codes([t or "" for t in c_topic])
    has_topic = np.array([bool(t) for t in topics], dtype=bool)[c_top] if topics else np.zeros(0, dtype=bool)
    intents = [t for t in topics if t]
    in_col = np.array([intents.index(t) if t else -1 for t in topics], dtype=np.int64)
    intent_counts = _matrix(c_rows, in_col[c_top] if topics else c_top, n, len(intents))
    outcome = np.array([o or "" for o in c_outcome], dtype=object)
    c_handoff = outcome == "transferred"
    csat = np.array([x if x is not None else 0 for x in c_csat], dtype=np.int64)
    c_low = (csat >= 1) & (csat <= 2)
    bill_topics = np.array([t in ("lookup_bill", "explain_bill") for t in topics], dtype=bool)
    c_bill = bill_topics[c_top] if topics else np.zeros(0, dtype=bool)
    # A repeat contact: the same customer about the same topic within REPEAT_WINDOW_DAYS of the previous.
    c_repeat = np.zeros(len(c_ids), dtype=bool)
    if len(c_ids) > 1:
        order = np.lexsort((started_s, c_top, c_rows))
        same = (c_rows[order][1:] == c_rows[order][:-1]) & (c_top[order][1:] == c_top[order][:-1])
        close = np.diff(started_s[order]) <= REPEAT_WINDOW_DAYS * 86400
        c_repeat[order[1:]] = same & close & has_topic[order][1:] & (c_rows[order][1:] >= 0)
    for name, mask in (("conversation", None), ("handoff", c_handoff), ("low_csat", c_low),
                       ("repeat_contact", c_repeat), ("bill_question", c_bill)):
        rows_m = c_rows if mask is None else c_rows[mask]
        ids_m = c_ids if mask is None else c_ids[mask]
        keep = rows_m >= 0
        evidence[name] = Grouped.of(rows_m[keep], ids_m[keep], n)

    # Work orders of the window: disputes, and complaints with their category (a few per cent of
    # customers: their payload is read for complaints only).
    w_id, w_acct, w_kind = _columns(connection, select(orders_t.id, orders_t.account_no,
                                                       type_coerce(orders_t.kind, String))
                                    .where(orders_t.account_no.is_not(None), orders_t.created_at >= since,
                                           type_coerce(orders_t.kind, String).in_(
                                               (WorkOrderKind.DISPUTE.value, WorkOrderKind.COMPLAINT.value))), "ioo")
    w_rows = by_account(w_acct)
    w_ids = np.array(w_id, dtype=np.int64)
    kinds = np.array(w_kind, dtype=object)
    w_complaint, w_dispute = kinds == "complaint", kinds == "dispute"
    payloads = dict(connection.execute(select(orders_t.id, orders_t.payload).where(
        orders_t.id.in_([int(x) for x in w_ids[w_complaint]]))).all()) if w_complaint.any() else {}
    w_category = [str((payloads.get(int(i)) or {}).get("category") or "other") if w_complaint[k] else ""
                  for k, i in enumerate(w_ids)]
    categories = sorted({c for c in w_category if c})
    cat_col = {c: j for j, c in enumerate(categories)}
    w_cat = np.array([cat_col.get(c, -1) for c in w_category], dtype=np.int64)
    for name, mask in (("complaint", w_complaint), ("dispute", w_dispute)):
        keep = mask & (w_rows >= 0)
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


__all__ = ["FeatureFrame", "Grouped", "load_features"]
