"""Outbox messages for issued bills and dunning (T/CI 1281 §7.5, §7.9).

Rows are written in the same transaction as the bill or the dunning action, and a channel
(SMS gateway, WeChat template message, e-mail) delivers them later; `dedupe_key` makes sure a
re-run never queues the same message twice. Every figure in the text comes from the billing core.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from billing_core.db.operations_models import NotificationChannel, NotificationStatus

BILL_TEMPLATE = "bill_issued_v1"
DUE_SOON_TEMPLATE = "due_soon_v1"
DUNNING_TEMPLATE = "dunning_{tier}_v1"


# The delivery state of a new row (the outbox worker's columns, `operations.outbox`): every row
# builder carries them, since the cycle's bulk insert writes all columns explicitly.
NEW_DELIVERY_STATE: dict[str, Any] = {
    "attempts": 0, "next_attempt_at": None, "claim_token": None, "claimed_until": None,
    "provider_message_id": None, "provider_response": None, "last_error": None,
}


def period_label(period: str) -> str:
    """'2026-07' → '2026年7月'."""
    year, month = period.split("-")
    return f"{year}年{int(month)}月"


def recipients(phone: str | None, wechat_openid: str | None, email: str | None = None) -> dict[str, str]:
    """The channels a customer can be reached on (the customers table has no e-mail yet)."""
    found = {}
    if phone:
        found[NotificationChannel.SMS.value] = phone
    if wechat_openid:
        found[NotificationChannel.WECHAT_TEMPLATE.value] = wechat_openid
    if email:
        found[NotificationChannel.EMAIL.value] = email
    return found


def channel_rows(dedupe: str, kind: str, template: str, account_no: str, bill_id: int | None, body: str,
                 payload: dict[str, Any], channels: list[str], reachable: dict[str, str]) -> list[dict[str, Any]]:
    """One pending outbox row per channel asked for that the customer can be reached on; the
    channel ends the dedupe key, so a notice is queued once per channel."""
    now = datetime.now(UTC)
    return [
        {
            "dedupe_key": f"{dedupe}:{channel}",
            "channel": channel,
            "kind": kind,
            "account_no": account_no,
            "bill_id": bill_id,
            "recipient": reachable[channel],
            "template": template,
            "body": body,
            "payload": payload,
            "status": NotificationStatus.PENDING,
            "created_at": now,
            "sent_at": None,
            **NEW_DELIVERY_STATE,
        }
        for channel in channels
        if channel in reachable
    ]


def bill_issued_rows(
    *,
    bill_id: int,
    bill_no: str,
    account_no: str,
    name: str,
    period: str,
    amount: Decimal,
    total_kwh: Decimal,
    due_date: date,
    channels: list[str],
    reachable: dict[str, str],
) -> list[dict[str, Any]]:
    """One outbox row per channel the policy asks for and the customer can be reached on."""
    body = (
        f"尊敬的{name}客户：您户号{account_no}的{period_label(period)}电费{amount}元"
        f"（电量{total_kwh.normalize():f}千瓦时），账单号{bill_no}，请于{due_date.isoformat()}前缴纳。"
    )
    payload = {
        "bill_no": bill_no,
        "period": period,
        "amount": str(amount),
        "total_kwh": str(total_kwh),
        "due_date": due_date.isoformat(),
    }
    return channel_rows(f"bill_issued:{bill_id}", "bill_issued", BILL_TEMPLATE, account_no, bill_id, body, payload,
                        channels, reachable)


def dunning_rows(
    *,
    bill_id: int,
    bill_no: str,
    account_no: str,
    name: str,
    period: str,
    tier: str,
    owed: Decimal,
    late_fee: Decimal,
    days: int,
    channels: list[str],
    reachable: dict[str, str],
) -> list[dict[str, Any]]:
    """Reminder messages of one dunning tier."""
    urgency = "温馨提醒" if tier == "reminder" else "再次提醒"
    body = (
        f"{urgency}：尊敬的{name}客户，您户号{account_no}的{period_label(period)}电费（账单号{bill_no}）"
        f"已逾期{days}天，尚欠{owed}元，截至目前违约金{late_fee}元，请尽快缴纳。"
    )
    payload = {"bill_no": bill_no, "tier": tier, "owed": str(owed), "late_fee": str(late_fee), "days": days}
    return channel_rows(f"dunning:{bill_id}:{tier}", f"dunning_{tier}", DUNNING_TEMPLATE.format(tier=tier), account_no,
                        bill_id, body, payload, channels, reachable)


def due_soon_rows(
    *,
    bill_id: int,
    bill_no: str,
    account_no: str,
    name: str,
    period: str,
    owed: Decimal,
    due_date: date,
    days_left: int,
    channels: list[str],
    reachable: dict[str, str],
) -> list[dict[str, Any]]:
    """A reminder that a bill still owed falls due soon (缴费提醒), one row per channel."""
    body = (
        f"温馨提示：尊敬的{name}客户，您户号{account_no}的{period_label(period)}电费尚欠{owed}元"
        f"（账单号{bill_no}），将于{due_date.isoformat()}到期，请按时缴纳。"
    )
    payload = {"bill_no": bill_no, "period": period, "amount": str(owed), "due_date": due_date.isoformat(),
               "days_left": days_left}
    return channel_rows(f"due_soon:{bill_id}", "due_soon", DUE_SOON_TEMPLATE, account_no, bill_id, body, payload,
                        channels, reachable)


OPT_IN_KINDS = ("anomaly_alert", "forecast_above_usual")


def insight_rows(
    *,
    kind: str,
    account_no: str,
    ref: str,
    body: str,
    payload: dict[str, Any],
    channels: list[str],
    reachable: dict[str, str],
) -> list[dict[str, Any]]:
    """The hook for the insights (用电异常提醒, 电费预计偏高提醒): opt-in notices, one row per channel.

    `body` and `payload` are written by the billing core's insight code with its own figures; `ref`
    names the occurrence (e.g. "2026-12-03" for a day's anomaly, "2026-12" for a month's forecast)
    so the same alert is queued once. The worker sends them only to customers who opted in.
    """
    if kind not in OPT_IN_KINDS:
        raise ValueError(f"kind: {kind!r} is not an insight notice ({', '.join(OPT_IN_KINDS)})")
    return channel_rows(f"{kind}:{account_no}:{ref}", kind, f"{kind}_v1", account_no, None, body, payload,
                        channels, reachable)
