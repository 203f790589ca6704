"""The small interface every sender implements, and what a send can answer.

A sender speaks one provider's protocol and turns its answer into a `SendResult`: delivered,
retry later (time-out, rate limit, system busy), failed for good (bad number, template refused),
or — WeChat only — "unreachable here, try SMS". Senders never raise for a provider's answer; a
raise (a bug, an unexpected transport error) is treated by the worker as "retry".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from billing_core.operations.outbox import ClaimedMessage

Verdict = Literal["sent", "retry", "failed", "fallback_sms"]


@dataclass(frozen=True)
class SendResult:
    verdict: Verdict
    code: str  # the provider's own code ("0", "OK", "250", "timeout" …)
    message: str = ""
    provider_message_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def response(self) -> dict[str, Any]:
        """What is stored as the provider's answer."""
        return {"code": self.code, "message": self.message[:500], **({"raw": self.raw} if self.raw else {})}


class Sender(Protocol):
    channel: str
    # True when the provider de-duplicates on the key we send (then a resend after a crash is harmless)
    idempotent: bool

    def send(self, message: ClaimedMessage) -> SendResult: ...

    def close(self) -> None: ...


def idempotency_key(message: ClaimedMessage) -> str:
    """The key a provider de-duplicates on: the outbox row's `dedupe_key`, stable across retries."""
    return message.dedupe_key


def template_values(message: ClaimedMessage, fields: dict[str, str]) -> dict[str, str]:
    """Template variables from the row: each maps to a payload key, or `account_no` / `body`.

    The values are the billing core's strings as written into the outbox, never recomputed."""
    values = {}
    for name, source in fields.items():
        if source == "account_no":
            values[name] = message.account_no
        elif source == "body":
            values[name] = message.body
        else:
            values[name] = str(message.payload.get(source, ""))
    return values
