"""The weekly 负面体验 report (guide §7.4 e): counts by cause, channel and customer class, remedies
offered and accepted, promises overdue and masked examples — so recurrence can be prevented.

Nothing personal is printed in full: 户号 are shown as 4401****0001, and the evidence goes through
the same masking as the conversation records (phones, ID numbers).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.experience.negative.models import NegativeExperience, RemedyStatus
from agent.experience.negative.policy import RemedyPolicy, remedy_policy
from agent.grounding import mask_personal_numbers

ZONE = ZoneInfo("Asia/Shanghai")  # weeks are the desk's weeks, Monday 00:00 Beijing time
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
CHANNEL_CN = {"web": "网页", "wechat": "微信", "ivr": "热线", "alipay": "支付宝", "app": "App"}
STATUS_CN = {"offered": "已提出未答复", "accepted": "已接受", "declined": "已拒绝", "applied": "已直接给予",
             "pending": "待人工联系", None: "未提出"}
REMEDY_CN_FALLBACK = "未定"
UNVERIFIED_CLASS = "身份未核实"
_CATEGORY_CN = {"residential": "居民", "ci_single": "工商业", "ci_two_part": "工商业（两部制）",
                "agricultural": "农业"}
EXAMPLES = 5

ClassResolver = Callable[[Session, set[str]], dict[str, str]]


class WeekError(ValueError):
    """The week is not written as YYYY-Www (ISO week, e.g. 2026-W48)."""


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) of an ISO week in Beijing time, as UTC datetimes."""
    match = _WEEK.match(week.strip())
    if not match:
        raise WeekError(f"week: 应为 YYYY-Www（ISO 周，如 2026-W48），不是 {week!r}")
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError as exc:
        raise WeekError(f"week: {week} 不是有效的 ISO 周") from exc
    start = datetime(monday.year, monday.month, monday.day, tzinfo=ZONE)
    return start.astimezone(UTC), (start + timedelta(days=7)).astimezone(UTC)


def mask_account(account_no: str) -> str:
    """4401****0001: enough for staff to tell records apart in a report, not to identify a customer."""
    return f"{account_no[:4]}****{account_no[-4:]}" if len(account_no) >= 8 else "****"


def category_classes(session: Session, accounts: set[str]) -> dict[str, str]:
    """Fallback customer class: the tariff category (居民 / 工商业 / 农业) of the billing record.

    The classification module's resolver (`default_class_resolver`) uses it for accounts with no class.
    """
    if not accounts:
        return {}
    from billing_core.db.models import Customer  # read-only, like the staff card

    rows = session.execute(select(Customer.account_no, Customer.category).where(Customer.account_no.in_(accounts)))
    return {account: _CATEGORY_CN.get(str(getattr(category, "value", category)), str(category))
            for account, category in rows}


def default_class_resolver() -> ClassResolver:
    """The classification module's leading class per account (`agent.experience.classes`), which
    itself falls back to the tariff category for an account with no class."""
    from agent.experience.classes import customer_classes

    return customer_classes


@dataclass(frozen=True)
class WeeklyReport:
    week: str
    start: datetime
    end: datetime
    total: int
    previous_total: int
    by_cause: Counter[str]
    first_cause: Counter[str]
    by_channel: Counter[str]
    by_class: Counter[str]
    remedies: Counter[tuple[str, str]]  # (remedy, status)
    overdue: list[tuple[str, str, str, str]]  # (conversation, account masked, remedy, due)
    examples: list[tuple[str, str, str]]  # (cause, channel, masked detail)


def weekly_report(session: Session, week: str, now: datetime | None = None,
                  classes: ClassResolver | None = None, policy: RemedyPolicy | None = None) -> WeeklyReport:
    """The negative experiences opened in `week`, counted the ways the report prints them."""
    start, end = week_bounds(week)
    now = now or datetime.now(UTC)
    policy = policy or remedy_policy()
    rows = list(session.scalars(select(NegativeExperience).where(
        NegativeExperience.opened_at >= start, NegativeExperience.opened_at < end)
        .order_by(NegativeExperience.opened_at, NegativeExperience.id)))
    previous_total = int(session.scalar(select(func.count()).select_from(NegativeExperience).where(
        NegativeExperience.opened_at >= start - timedelta(days=7), NegativeExperience.opened_at < start)) or 0)
    resolver = classes or default_class_resolver()
    class_of = resolver(session, {r.account_no for r in rows if r.account_no})
    by_cause: Counter[str] = Counter(cause for r in rows for cause in dict.fromkeys(r.causes or [r.cause]))
    overdue = [(r.conversation_id[:24], mask_account(r.account_no) if r.account_no else "—",
                policy.remedies[r.remedy].label if r.remedy in policy.remedies else str(r.remedy),
                r.remedy_due_at.astimezone(ZONE).strftime("%Y-%m-%d %H:%M"))
               for r in rows if r.remedy_due_at is not None and r.remedy_due_at < now
               and r.remedy_status in (RemedyStatus.ACCEPTED.value, RemedyStatus.PENDING.value)
               and r.remedy != "priority_handling"]
    examples = [(str(e.get("cause")), r.channel, mask_personal_numbers(str(e.get("detail", ""))))
                for r in rows for e in (r.evidence or [])[:1]][:EXAMPLES]
    return WeeklyReport(
        week=week, start=start, end=end, total=len(rows), previous_total=previous_total,
        by_cause=by_cause, first_cause=Counter(r.cause for r in rows),
        by_channel=Counter(r.channel for r in rows),
        by_class=Counter(class_of.get(r.account_no, UNVERIFIED_CLASS) if r.account_no else UNVERIFIED_CLASS
                         for r in rows),
        remedies=Counter((r.remedy or REMEDY_CN_FALLBACK, r.remedy_status or "none") for r in rows),
        overdue=overdue, examples=examples)


def format_markdown(report: WeeklyReport, policy: RemedyPolicy | None = None) -> str:
    """The report as Markdown (Chinese, masked)."""
    policy = policy or remedy_policy()
    first = report.start.astimezone(ZONE).date()
    last = (report.end.astimezone(ZONE) - timedelta(days=1)).date()
    trend = report.total - report.previous_total
    lines = [f"# 负面客户体验周报 {report.week}（{first} 至 {last}）", "",
             f"- 负面体验：{report.total} 起（上周 {report.previous_total} 起，{'+' if trend >= 0 else ''}{trend}）",
             f"- 依据：《客户体验管理 供电服务应用指南》§7.4；补救方案 remedies.yaml（{policy.effective_from} 起）", ""]
    if not report.total:
        lines.append("本周没有负面体验记录。")
        return "\n".join(lines) + "\n"

    def table(title: str, header: str, counts: Iterable[tuple[str, int]]) -> None:
        lines.extend([f"## {title}", "", f"| {header} | 起数 | 占比 |", "|---|---:|---:|"])
        for name, count in counts:
            lines.append(f"| {name} | {count} | {count / report.total:.0%} |")
        lines.append("")

    table("按原因（一起体验可有多个原因）", "原因",
          [(policy.cause_label(c), n) for c, n in report.by_cause.most_common()])
    table("按首要原因", "首要原因", [(policy.cause_label(c), n) for c, n in report.first_cause.most_common()])
    table("按渠道", "渠道", [(CHANNEL_CN.get(c, c), n) for c, n in report.by_channel.most_common()])
    table("按客户类别", "客户类别", report.by_class.most_common())
    offered = sum(n for (_, status), n in report.remedies.items()
                  if status in ("offered", "accepted", "declined"))
    accepted = sum(n for (_, status), n in report.remedies.items() if status == "accepted")
    lines.extend(["## 补救方案", "",
                  f"客户接受率：{accepted}/{offered}" + (f"（{accepted / offered:.0%}）" if offered else ""), "",
                  "| 方案 | 状态 | 起数 |", "|---|---|---:|"])
    for (remedy, status), count in sorted(report.remedies.items()):
        label = policy.remedies[remedy].label if remedy in policy.remedies else remedy
        lines.append(f"| {label} | {STATUS_CN.get(status if status != 'none' else None, status)} | {count} |")
    lines.append("")
    lines.extend(["## 逾期未兑现的承诺", ""])
    if report.overdue:
        lines.extend(["| 会话 | 户号 | 方案 | 应完成时间 |", "|---|---|---|---|"])
        lines.extend(f"| {c} | {a} | {r} | {d} |" for c, a, r, d in report.overdue)
    else:
        lines.append("无。")
    lines.extend(["", "## 示例（已脱敏）", ""])
    lines.extend(f"- {policy.cause_label(cause)}（{CHANNEL_CN.get(channel, channel)}）：{detail}"
                 for cause, channel, detail in report.examples)
    return "\n".join(lines) + "\n"
