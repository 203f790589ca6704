"""`verify_identity`: establish the conversation's principal, with attempt limits and lock-out.

Three ways, as the knowledge-base article privacy-identity-verification describes:
- 户号 + last 4 digits of the registered phone or of the holder's ID number (web, app, any text);
- a WeChat openid already bound to an account (the openid comes from WeChat's envelope, never
  from the user's text);
- hotline: the caller number (ANI, from the telephony envelope) must be the registered phone,
  plus a check question: **the road/street of the registered address** (e.g. 「体育西路」).
  A caller at home knows the road they live on; a stranger holding only a 户号 does not, and
  unlike the 区 (about a dozen choices in a city) it cannot be guessed in three tries. The last
  paid amount was rejected: customers on 代扣 rarely know it, and it changes monthly.

Failures: every wrong answer is recorded and counted — a wrong phone/ID tail, a wrong hotline
road, an unknown 户号, and wrong answers sent while a lock is already on — per conversation and per
claimed 户号 across conversations and channels (a hotline caller whose number is registered is
counted against that customer's 户号). A failed check does not undo an earlier successful one in
the same conversation (trying a second 户号 and failing leaves the first verified). After
`max_failures_per_conversation` the conversation is locked (any earlier verification in it is
dropped) and handed to a person; after `max_failures_per_account` failures against one claimed
户号 within the window (from any conversation), that 户号 is locked for online checks for
`account_lock_minutes`, doubled for each earlier lock within `account_lock_repeat_hours` (up to
`account_lock_max_minutes`). One source (caller number, openid, web address) with wrong answers
against `max_accounts_per_source` different 户号 within `source_window_minutes` is locked for
`source_lock_minutes`: a spray of one guess per 户号 reaches neither limit above. A locked 户号
(or source) refuses even the right answer (recorded as `refused_by_lock`, not counted as wrong) on
every channel, the bound WeChat included, until the lock ends. Staff may lift a lock early
(`tools.identity_locks`); the wrong answers before the lift then stop counting towards its key.
Checks against one conversation, 户号 or source are serialised (`serialize_checks`), so a burst of
parallel guesses gets no more tries than a sequence. Locks are rows in the database, so they hold
across processes and restarts. The failure message is the same whether the 户号 exists or not, and
non-existent 户号 are counted and locked exactly like real ones. A message run again (its reply
lost, the client resending it) is not a new guess: the same answer under the same message id
(`ToolContext.message_id`) reuses that message's attempt (`message_key`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import BigInteger, Row, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from billing_core.db.models import Customer
from knowledge_base.digit_words import DIGIT_WORDS
from tools.context import Principal, ToolContext
from tools.models import (IdentityAttempt, IdentityLock, IdentityLockLift, LockScope, VerificationMethod,
                          VerifiedSession)
from tools.results import InvalidInput, ToolResult
from tools.service_policy import VerificationPolicy
from tools.transfer_to_human import HandoffReason, create_handoff

NEUTRAL_FAILURE = "信息核对未通过，请检查户号和验证信息后重试。"
# Roads first: 「芳村大道」 is a road, not the village 「芳村」.
STREET = re.compile(r"(?:省|市|区|县|镇|乡)([^省市区县镇乡\d\s]{1,20}?(?:大道|大街|路|街|巷))")
VILLAGE = re.compile(r"(?:省|市|区|县|镇|乡)([^省市区县镇乡\d\s]{1,20}?村)")

# Statements built once with bound parameters, on the tables (no ORM entities), run on the
# session's connection: building them per call, and the ORM's compile and loading steps, cost
# more CPU than running them. Customers and locks are read as plain rows.
_C, _ATTEMPT, _LOCK, _SESSION, _LIFT = (Customer.__table__.c, IdentityAttempt.__table__.c,
                                        IdentityLock.__table__.c, VerifiedSession.__table__.c,
                                        IdentityLockLift.__table__.c)
_CUSTOMER = select(_C.account_no, _C.name, _C.phone, _C.id_last4, _C.address)
_CUSTOMER_BY_ACCOUNT = _CUSTOMER.where(_C.account_no == bindparam("account_no"))
_CUSTOMER_BY_OPENID = _CUSTOMER.where(_C.wechat_openid == bindparam("openid"))
_CUSTOMERS_BY_PHONE = _CUSTOMER.where(_C.phone == bindparam("phone")).limit(3)
_CUSTOMERS_BY_PHONE_AND_ACCOUNT = _CUSTOMER.where(
    _C.phone == bindparam("phone"), _C.account_no == bindparam("account_no")).limit(3)
_ACTIVE_LOCK = (
    select(_LOCK.scope, _LOCK.key, _LOCK.locked_until)
    .where(_LOCK.scope == bindparam("scope"), _LOCK.key == bindparam("key"),
           _LOCK.locked_until > bindparam("now"))
    .order_by(_LOCK.locked_until.desc()).limit(1)
)
_INSERT_ATTEMPT = insert(IdentityAttempt.__table__)  # type: ignore[arg-type]
_ATTEMPT_OF_MESSAGE = select(_ATTEMPT.id).where(
    _ATTEMPT.conversation_id == bindparam("conversation_id"), _ATTEMPT.message_key == bindparam("message_key"))
_MARK_ATTEMPT = update(IdentityAttempt.__table__).where(  # type: ignore[arg-type]
    _ATTEMPT.id == bindparam("attempt_id"))
# A wrong answer: not verified, and not a right answer refused by a lock.
_WRONG = (_ATTEMPT.success.is_(False), _ATTEMPT.refused_by_lock.is_(False))


def _after_last_lift(scope: LockScope, key: str) -> Any:
    """Attempts made after staff last lifted a lock of `scope` on the key bound as `key`: the
    earlier wrong answers stay on record but no longer count (`IdentityLockLift.attempts_before`)."""
    floor = (select(func.coalesce(func.max(_LIFT.attempts_before), 0))
             .where(_LIFT.scope == scope, _LIFT.key == bindparam(key)).scalar_subquery())
    return _ATTEMPT.id > floor


_CONVERSATION_FAILURES = select(func.count()).where(
    _ATTEMPT.conversation_id == bindparam("conversation_id"), *_WRONG,
    _after_last_lift(LockScope.CONVERSATION, "conversation_id"))
_ACCOUNT_FAILURES = select(func.count()).where(
    _ATTEMPT.claimed_account == bindparam("claimed"), *_WRONG, _ATTEMPT.attempted_at > bindparam("since"),
    _after_last_lift(LockScope.ACCOUNT, "claimed"))
# Distinct 户号 with wrong answers from one source: an enumeration tries account after account.
_SOURCE_ACCOUNTS = select(func.count(func.distinct(_ATTEMPT.claimed_account))).where(
    _ATTEMPT.source == bindparam("source"), *_WRONG, _ATTEMPT.attempted_at > bindparam("since"),
    _after_last_lift(LockScope.SOURCE, "source"))
_RECENT_ACCOUNT_LOCKS = select(func.count()).where(
    _LOCK.scope == LockScope.ACCOUNT, _LOCK.key == bindparam("key"), _LOCK.locked_at > bindparam("since"))
_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
_UPDATE_SESSION = update(VerifiedSession.__table__).where(  # type: ignore[arg-type]
    _SESSION.conversation_id == bindparam("which_conversation"))
_INSERT_SESSION = insert(VerifiedSession.__table__)  # type: ignore[arg-type]
CustomerRow = Row[Any]  # a row of _CUSTOMER's columns
LockRow = Row[Any] | IdentityLock  # an active lock read back, or one just created


CHINESE_DIGITS = DIGIT_WORDS  # a whole value of digit words (「四四零幺…」) is read digit by digit


def normalize_digits(value: str) -> str:
    """Drop spaces, dashes and full-width forms, and read digits spoken one by one (as a hotline's
    speech recogniser writes them): 「4401 0000 0001」, 「四四零幺零零零零零零零幺」→「440100000001」."""
    value = value.translate({ord(c): ord(c) - 0xFEE0 for c in "０１２３４５６７８９Ｘｘ"})
    value = re.sub(r"[\s\-_]", "", value).upper()
    if value and all(c.isdigit() or c in CHINESE_DIGITS or c == "X" for c in value):
        value = "".join(CHINESE_DIGITS.get(c, c) for c in value)
    return value


class VerifyIdentityInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: VerificationMethod = Field(
        default=VerificationMethod.ACCOUNT_SECRET,
        description="account_secret: 户号+手机/身份证后4位；wechat_openid: 已绑定的微信；hotline: 来电号码+核对问题",
    )
    account_no: str | None = Field(default=None, description="客户自报的12位户号")
    last4: str | None = Field(default=None, description="登记手机号后4位或户主身份证号后4位",
                              json_schema_extra={"secret": True})
    check_answer: str | None = Field(default=None, max_length=100,
                                     description="热线核对问题的回答：用电地址所在的路或街道名称",
                                     json_schema_extra={"secret": True})

    @field_validator("account_no")
    @classmethod
    def _account_no(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = normalize_digits(value)
        if not re.fullmatch(r"\d{12}", value):
            raise ValueError("户号应为12位数字")
        return value

    @field_validator("last4")
    @classmethod
    def _last4(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = normalize_digits(value)
        if not re.fullmatch(r"\d{3}[\dX]", value):
            raise ValueError("应为4位数字（身份证末位可以是X）")
        return value


class Verified(ToolResult):
    status: Literal["verified"] = "verified"
    account_no: str
    method: VerificationMethod
    customer_name_masked: str
    expires_at: datetime


class VerificationFailed(ToolResult):
    status: Literal["failed"] = "failed"
    attempts_left: int


class VerificationLocked(ToolResult):
    status: Literal["locked"] = "locked"
    handoff_no: str | None
    locked_until: datetime | None


class NotBound(ToolResult):
    """WeChat method, but this openid is bound to no account: verify by 户号 instead."""

    status: Literal["not_bound"] = "not_bound"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)


def address_street(address: str) -> str | None:
    """The road/street of an address: 「广州市天河区体育西路 1 号」→「体育西路」."""
    compact = address.replace(" ", "")
    match = STREET.search(compact) or VILLAGE.search(compact)
    return match.group(1) if match else None


def street_matches(address: str, answer: str) -> bool:
    street = address_street(address)
    spoken = re.sub(r"[\s，。,.]", "", answer)
    if street is None or len(spoken) < 2:
        return False
    # The whole name, suffix included: 「天河」 alone is also the district, which a stranger knows.
    return street in spoken


def _active_lock(session: Session, scope: LockScope, key: str, now: datetime) -> LockRow | None:
    return session.connection().execute(_ACTIVE_LOCK, {"scope": scope, "key": key, "now": now}).first()


def _advisory_key(key: str) -> int:
    """A signed 64-bit number for `key` (what pg_advisory_xact_lock takes), the same in every process."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def serialize_checks(session: Session, keys: list[str]) -> None:
    """Let one check at a time count against a conversation, a claimed 户号 or a source.

    Without this, parallel guesses each read "4 failures so far", each get their answer checked,
    and a burst of a hundred requests gets a hundred guesses past a limit of five. PostgreSQL:
    transaction-scoped advisory locks, taken in a fixed order (no deadlock). SQLite serialises
    writers already: the attempt row is the first write of the transaction, so the counts read
    after it are read under the database's write lock.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return
    for number in sorted({_advisory_key(key) for key in keys}):
        connection.execute(_ADVISORY_LOCK, {"key": number})


def _locked(session: Session, ctx: ToolContext, lock: LockRow, claimed: str | None,
            named_account: bool) -> VerificationLocked:
    spray = "，同一来源已对多个不同户号核实失败" if lock.scope == LockScope.SOURCE else ""
    handoff = create_handoff(
        session, ctx, HandoffReason.VERIFICATION_LOCKED,
        f"身份核实多次未通过{spray}，已暂停在线核实（客户自报户号：{claimed if named_account else '未提供'}）。"
        "请人工核实身份后协助办理。",
    )
    until = lock.locked_until if lock.scope != LockScope.CONVERSATION else None
    # A source lock says nothing about the 户号 it was asked about (nor whether it exists).
    whose = "该户号的" if named_account and lock.scope == LockScope.ACCOUNT else ""
    wait = f"{whose}在线核实已暂停至 {until.astimezone(ctx.policy.zone):%m月%d日 %H:%M}，" if until else ""
    return VerificationLocked(
        handoff_no=handoff.no, locked_until=until,
        message=f"身份核实未通过次数过多，为保护账户安全已暂停在线核实，期间即使信息正确也无法在线核实。{wait}"
                f"已为您转人工客服（转接单号 {handoff.no}），也可拨打95598或携带户主身份证件到营业厅办理。",
    )


def _candidates(session: Session, ctx: ToolContext,
                args: VerifyIdentityInput) -> tuple[str | None, CustomerRow | None] | ToolResult:
    """(claimed key, the customer whose secret matched or None) — or a result to return as is."""
    method = args.method
    if method == VerificationMethod.ACCOUNT_SECRET:
        if args.account_no is None:
            return InvalidInput(field="account_no", message="account_no: 请提供12位户号")
        if args.last4 is None:
            return InvalidInput(field="last4", message="last4: 请提供登记手机号后4位或户主身份证号后4位")
        customer = session.connection().execute(_CUSTOMER_BY_ACCOUNT, {"account_no": args.account_no}).first()
        if customer is None:
            return args.account_no, None
        secrets = {s for s in ((customer.phone or "")[-4:], (customer.id_last4 or "").upper()) if len(s) == 4}
        return args.account_no, customer if args.last4 in secrets else None
    if method == VerificationMethod.WECHAT_OPENID:
        if not ctx.allows(method):
            return InvalidInput(field="method", message="method: 只有在微信渠道、由微信带来的身份才能用绑定的微信核实")
        customer = session.connection().execute(_CUSTOMER_BY_OPENID, {"openid": ctx.channel_identity}).first()
        if customer is None:
            return NotBound(message="您的微信还没有绑定户号。请提供户号，以及登记手机号后4位或户主身份证号后4位完成核实。")
        return customer.account_no, customer
    # hotline
    if not ctx.allows(method):
        return InvalidInput(field="method", message="method: 只有热线来电（带来电号码）才能用来电号码核实")
    if not args.check_answer:
        return InvalidInput(field="check_answer", message="check_answer: 请说出您用电地址所在的路或街道名称")
    caller = normalize_digits(ctx.channel_identity).removeprefix("+86").removeprefix("0086")
    if args.account_no is None:
        matches = session.connection().execute(_CUSTOMERS_BY_PHONE, {"phone": caller}).all()
    else:
        matches = session.connection().execute(_CUSTOMERS_BY_PHONE_AND_ACCOUNT,
                                  {"phone": caller, "account_no": args.account_no}).all()
    claimed = args.account_no or f"ani:{caller}"[:32]
    if len(matches) > 1:
        return InvalidInput(field="account_no", message="account_no: 这个来电号码登记了多个户号，请说出要办理的户号")
    if not matches:
        return claimed, None
    customer = matches[0]
    # A wrong road from the registered phone counts against that 户号 (and the 户号's lock applies),
    # not only against the caller number: the hotline is one more way to guess the same account.
    return customer.account_no, customer if street_matches(customer.address, args.check_answer) else None


def message_key(ctx: ToolContext, args: VerifyIdentityInput, claimed: str | None) -> str | None:
    """A digest naming this answer in this message (None without a message id): the secrets it
    covers are not stored, only whether the same message brought the same answer again."""
    if ctx.message_id is None:
        return None
    parts = (ctx.message_id, args.method, claimed or "", args.last4 or "", args.check_answer or "")
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()


def verify_identity(ctx: ToolContext, args: VerifyIdentityInput) -> ToolResult:
    policy = ctx.policy.verification
    now = ctx.now()
    named_account = args.account_no is not None or args.method == VerificationMethod.ACCOUNT_SECRET
    with ctx.session_factory() as session:
        found = _candidates(session, ctx, args)
        if isinstance(found, ToolResult):  # nothing to check; a locked conversation stays locked
            conversation_lock = _active_lock(session, LockScope.CONVERSATION, ctx.conversation_id, now)
            if conversation_lock is None:
                return found
            result = _locked(session, ctx, conversation_lock, args.account_no, named_account)
            session.commit()
            return result
        claimed, customer = found
        source = ctx.guess_source
        serialize_checks(session, [f"conversation:{ctx.conversation_id}", *([f"account:{claimed}"] if claimed else []),
                                   *([f"source:{source}"] if source else [])])
        # The attempt is written first (as a failure), then the locks and counts are read. The same
        # answer in a message run again is that message's attempt: not written, so not counted twice
        # (the locks it led to are there already, and the counts are what they were).
        key = message_key(ctx, args, claimed)
        attempt_id = None if key is None else session.connection().scalar(
            _ATTEMPT_OF_MESSAGE, {"conversation_id": ctx.conversation_id, "message_key": key})
        if attempt_id is None:
            attempt_id = session.connection().execute(_INSERT_ATTEMPT, {
                "conversation_id": ctx.conversation_id, "channel": ctx.channel, "method": args.method,
                "claimed_account": claimed, "success": False, "refused_by_lock": False,
                "attempted_at": now, "source": source, "message_key": key}).inserted_primary_key[0]
        conversation_lock = _active_lock(session, LockScope.CONVERSATION, ctx.conversation_id, now)
        account_lock = _active_lock(session, LockScope.ACCOUNT, claimed, now) if claimed else None
        source_lock = _active_lock(session, LockScope.SOURCE, source, now) if source else None
        if customer is not None and conversation_lock is None and account_lock is None and source_lock is None:
            session.connection().execute(_MARK_ATTEMPT, {"attempt_id": attempt_id, "success": True,
                                                         "refused_by_lock": False})
            return _verified(session, ctx, args, customer, now)
        left = policy.max_failures_per_conversation
        if customer is not None:
            # The right answer while locked: refused, but not a wrong answer, so not counted.
            session.connection().execute(_MARK_ATTEMPT, {"attempt_id": attempt_id, "success": False,
                                                         "refused_by_lock": True})
        else:  # a wrong answer (or an unknown 户号): counted per conversation and per 户号
            failures = session.connection().scalar(
                _CONVERSATION_FAILURES, {"conversation_id": ctx.conversation_id}) or 0
            left -= failures
            if conversation_lock is None and failures >= policy.max_failures_per_conversation:
                conversation_lock = IdentityLock(
                    scope=LockScope.CONVERSATION, key=ctx.conversation_id, locked_at=now,
                    locked_until=now + timedelta(hours=policy.conversation_lock_hours),
                    reason=f"本次会话{failures}次核实失败")
                session.add(conversation_lock)
                # A locked conversation keeps no verified account.
                session.execute(delete(VerifiedSession).where(VerifiedSession.conversation_id == ctx.conversation_id))
                ctx.principal = None
            if claimed is not None:
                since = now - timedelta(minutes=policy.account_window_minutes)
                account_failures = session.connection().scalar(
                    _ACCOUNT_FAILURES, {"claimed": claimed, "since": since}) or 0
                left = min(left, policy.max_failures_per_account - account_failures)
                if account_lock is None and account_failures >= policy.max_failures_per_account:
                    account_lock = _lock_account(session, claimed, now, account_failures, policy)
            if source is not None and claimed is not None and source_lock is None:
                source_lock = _lock_source(session, source, now, policy)
        # A locked source hears only that: what it is told names no 户号 and no other lock.
        lock = source_lock or account_lock or conversation_lock
        if lock is not None:
            session.flush()
            result = _locked(session, ctx, lock, claimed, named_account)
            session.commit()
            return result
        session.commit()
        return VerificationFailed(attempts_left=left, message=f"{NEUTRAL_FAILURE}（还可以再试 {left} 次）")


def _lock_account(session: Session, claimed: str, now: datetime, failures: int,
                  policy: VerificationPolicy) -> IdentityLock:
    """Lock a claimed 户号; each lock within `account_lock_repeat_hours` of earlier ones lasts twice as long."""
    earlier = session.connection().scalar(_RECENT_ACCOUNT_LOCKS, {
        "key": claimed, "since": now - timedelta(hours=policy.account_lock_repeat_hours)}) or 0
    minutes = min(policy.account_lock_minutes * 2 ** min(earlier, 16), policy.account_lock_max_minutes)
    lock = IdentityLock(scope=LockScope.ACCOUNT, key=claimed, locked_at=now,
                        locked_until=now + timedelta(minutes=minutes),
                        reason=f"{failures}次核实失败" + (
                            f"（{policy.account_lock_repeat_hours}小时内第{earlier + 1}次锁定）" if earlier else ""))
    session.add(lock)
    return lock


def _lock_source(session: Session, source: str, now: datetime, policy: VerificationPolicy) -> IdentityLock | None:
    """Lock `source` when its wrong answers in the window name `max_accounts_per_source` different 户号."""
    accounts = session.connection().scalar(_SOURCE_ACCOUNTS, {
        "source": source, "since": now - timedelta(minutes=policy.source_window_minutes)}) or 0
    if accounts < policy.max_accounts_per_source:
        return None
    lock = IdentityLock(scope=LockScope.SOURCE, key=source, locked_at=now,
                        locked_until=now + timedelta(minutes=policy.source_lock_minutes),
                        reason=f"{policy.source_window_minutes}分钟内对{accounts}个不同户号核实失败")
    session.add(lock)
    return lock


def _verified(session: Session, ctx: ToolContext, args: VerifyIdentityInput, customer: CustomerRow,
              now: datetime) -> Verified:
    expires = now + timedelta(minutes=ctx.policy.verification.session_minutes)
    values = {"channel": ctx.channel, "account_no": customer.account_no, "method": args.method,
              "verified_at": now, "expires_at": expires}
    updated = session.connection().execute(_UPDATE_SESSION, {"which_conversation": ctx.conversation_id, **values})
    if updated.rowcount == 0:
        session.connection().execute(_INSERT_SESSION, {"conversation_id": ctx.conversation_id, **values})
    session.commit()
    ctx.principal = Principal(account_no=customer.account_no, method=args.method,
                              verified_at=now, expires_at=expires)
    return Verified(
        account_no=customer.account_no, method=args.method,
        customer_name_masked=mask_name(customer.name), expires_at=expires,
        message=f"身份核实通过，户名 {mask_name(customer.name)}，户号 {customer.account_no}。请问需要办理什么？",
    )
