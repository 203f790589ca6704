"""A customer's classes: the 重要客户 level staff set (guide §5.1 表1) and the derived classes of the
last tag refresh, in the policy's precedence order, with the service standard they bring.

Setting or clearing a staff class needs a reason and the setter's name, and leaves an audit row
(`tool_audit_events`, tool `cx_set_class` / `cx_clear_class`) next to the tool calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.experience.models import CustomerClassAssignment, CustomerProfile
from agent.experience.policy import ClassificationPolicy, CustomerClass, load_policy
from billing_core.db.engine import utc_now
from billing_core.db.models import Customer
from tools.audit import insert_audit_rows

MIN_REASON_CHARS = 4


class ClassInputError(ValueError):
    """Bad input to set or clear a class; the message names the field."""


@dataclass(frozen=True)
class StaffClass:
    code: str
    name: str
    reason: str
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class Standing:
    """Who the customer is for the service: the classes (precedence order) and what they change."""

    account_no: str
    classes: tuple[CustomerClass, ...]
    staff_class: StaffClass | None
    policy_version: str
    profile_computed_at: datetime | None = None
    preferred_channel: str | None = None  # where to answer (rules.preferred_channel), None: where asked
    preferred_channel_message: str | None = None

    @property
    def complaint_contact_hours(self) -> int | None:
        return next((c.service.complaint_contact_hours for c in self.classes
                     if c.service.complaint_contact_hours is not None), None)

    @property
    def complaint_queue(self) -> str | None:
        return next((c.service.complaint_queue for c in self.classes if c.service.complaint_queue), None)

    @property
    def offer_person_first(self) -> bool:
        return any(c.service.offer_person_first for c in self.classes)

    def names(self) -> list[str]:
        return [c.name for c in self.classes]


def _audit(session: Session, tool: str, staff: str, channel: str, account_no: str, arguments: dict[str, Any],
           status: str, result: dict[str, Any]) -> None:
    insert_audit_rows(lambda: session, [dict(
        tool=tool, conversation_id=(staff if staff.startswith("staff:") else f"staff:{staff}")[:128], channel=channel, account_no=account_no,
        verified_by="staff", arguments=arguments, status=status, result=result, error=None, duration_ms=0,
        created_at=utc_now())], session=session)


def _check(session: Session, account_no: str, reason: str, set_by: str) -> None:
    if not isinstance(account_no, str) or not account_no.isdigit() or len(account_no) != 12:
        raise ClassInputError("account_no: 户号应为12位数字")
    if session.scalar(select(Customer.id).where(Customer.account_no == account_no)) is None:
        raise ClassInputError("account_no: 户号不存在")
    if len((reason or "").strip()) < MIN_REASON_CHARS:
        raise ClassInputError(f"reason: 请说明认定理由（至少{MIN_REASON_CHARS}个字）")
    if not (set_by or "").strip():
        raise ClassInputError("set_by: 需要认定人")


def set_staff_class(session: Session, account_no: str, class_code: str, reason: str, set_by: str,
                    channel: str = "staff", policy: ClassificationPolicy | None = None) -> StaffClass:
    """Set (or change) the customer's staff-set class; audited. Caller commits."""
    policy = policy or load_policy()
    _check(session, account_no, reason, set_by)
    allowed = {c.code: c for c in policy.staff_classes}
    if class_code not in allowed:
        raise ClassInputError(f"class_code: 只能是 {', '.join(allowed)} 之一，不能是 {class_code!r}")
    row = session.scalar(select(CustomerClassAssignment).where(CustomerClassAssignment.account_no == account_no))
    previous = row.class_code if row is not None else None
    now = utc_now()
    if row is None:
        row = CustomerClassAssignment(account_no=account_no)
        session.add(row)
    row.class_code, row.reason, row.set_by, row.set_at = class_code, reason.strip(), set_by.strip(), now
    session.flush()
    _audit(session, "cx_set_class", set_by, channel, account_no,
           {"account_no": account_no, "class_code": class_code, "reason": reason.strip()}, "set",
           {"previous": previous, "class_code": class_code, "policy": policy.version})
    return StaffClass(code=class_code, name=allowed[class_code].name, reason=row.reason, set_by=row.set_by,
                      set_at=now)


def clear_staff_class(session: Session, account_no: str, reason: str, set_by: str,
                      channel: str = "staff") -> str | None:
    """Remove the customer's staff-set class (audited); returns the code it had, None if none."""
    _check(session, account_no, reason, set_by)
    row = session.scalar(select(CustomerClassAssignment).where(CustomerClassAssignment.account_no == account_no))
    previous = row.class_code if row is not None else None
    if row is not None:
        session.delete(row)
        session.flush()
    _audit(session, "cx_clear_class", set_by, channel, account_no,
           {"account_no": account_no, "reason": reason.strip()}, "cleared" if previous else "unchanged",
           {"previous": previous})
    return previous


def staff_class(session: Session, account_no: str, policy: ClassificationPolicy | None = None) -> StaffClass | None:
    policy = policy or load_policy()
    row = session.scalar(select(CustomerClassAssignment).where(CustomerClassAssignment.account_no == account_no))
    if row is None:
        return None
    try:
        name = policy.by_code(row.class_code).name
    except KeyError:
        name = row.class_code  # a level the current policy no longer lists: shown, but it changes nothing
    return StaffClass(code=row.class_code, name=name, reason=row.reason, set_by=row.set_by, set_at=row.set_at)


def standing(session: Session, account_no: str, policy: ClassificationPolicy | None = None) -> Standing:
    """The customer's classes now: the staff-set level plus the derived classes of the last refresh."""
    policy = policy or load_policy()
    assigned = staff_class(session, account_no, policy)
    profile = session.execute(select(CustomerProfile.classes, CustomerProfile.computed_at, CustomerProfile.tags)
                              .where(CustomerProfile.account_no == account_no)).first()
    codes = set(profile.classes or []) if profile is not None else set()
    if assigned is not None:
        codes.add(assigned.code)
    preferred = _preferred_channel(session, account_no, profile.tags if profile is not None else [], policy)
    return Standing(account_no=account_no, classes=tuple(policy.ordered(codes)), staff_class=assigned,
                    policy_version=policy.version,
                    profile_computed_at=profile.computed_at if profile is not None else None,
                    preferred_channel=preferred,
                    preferred_channel_message=policy.rules.preferred_channel.message if preferred else None)


def _preferred_channel(session: Session, account_no: str, tags: list[dict[str, Any]],
                       policy: ClassificationPolicy) -> str | None:
    """The channel the customer mostly uses, if the rule names it and the customer can be reached there."""
    rule = policy.rules.preferred_channel
    main = next((t.get("value") for t in tags if t.get("code") == "main_channel"), None)
    if not isinstance(main, dict) or main.get("channel") not in rule.channels:
        return None
    if int(main.get("contacts") or 0) < rule.min_contacts or float(main.get("share") or 0) < rule.min_share:
        return None
    if main["channel"] == "wechat" and not session.scalar(
            select(Customer.wechat_openid).where(Customer.account_no == account_no)):
        return None  # not bound: WeChat cannot reach this customer unasked
    return str(main["channel"])


def standing_reader(policy: ClassificationPolicy | None = None) -> Callable[[Session, str], Standing]:
    """`standing` bound to a policy (what the agent hands the tools)."""
    def read(session: Session, account_no: str) -> Standing:
        return standing(session, account_no, policy)

    return read


def customer_classes(session: Session, accounts: set[str],
                     policy: ClassificationPolicy | None = None) -> dict[str, str]:
    """Each account's leading class (policy precedence: a staff-set level, then the derived classes
    of the last refresh), for reports that group by class; an account with none falls back to its
    tariff category (居民 / 工商业 / 农业), so every account lands in some group."""
    from agent.experience.negative.report import category_classes  # the reports' common fallback

    if not accounts:
        return {}
    policy = policy or load_policy()
    codes: dict[str, set[str]] = {account: set() for account in accounts}
    wanted = sorted(accounts)
    for offset in range(0, len(wanted), 5000):
        chunk = wanted[offset : offset + 5000]
        for account, code in session.execute(select(CustomerClassAssignment.account_no, CustomerClassAssignment.class_code)
                                             .where(CustomerClassAssignment.account_no.in_(chunk))):
            codes[account].add(code)
        for account, derived in session.execute(select(CustomerProfile.account_no, CustomerProfile.classes)
                                                .where(CustomerProfile.account_no.in_(chunk))):
            codes[account].update(derived or [])
    named = {}
    for account, found in codes.items():
        ordered = policy.ordered(found)
        if ordered:
            named[account] = ordered[0].name
    rest = accounts - set(named)
    return {**named, **category_classes(session, rest)}
