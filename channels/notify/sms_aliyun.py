"""SMS through Alibaba Cloud's SMS service (dysmsapi 2017-05-25 `SendSms`, RPC style, signature v1).

The request is a form POST to the endpoint root with the common parameters (AccessKeyId, Action,
Format, RegionId, SignatureMethod=HMAC-SHA1, SignatureNonce, SignatureVersion=1.0, Timestamp,
Version) and SendSms's own (PhoneNumbers, SignName, TemplateCode, TemplateParam as JSON, OutId).
Signature = Base64(HMAC-SHA1(secret + "&", "POST&%2F&" + percent-encoded sorted query)), with
RFC 3986 percent-encoding. `Code` "OK" means accepted (BizId is the receipt id).

SendSms has no idempotency key: `OutId` (set to the outbox key) only comes back in receipts, so
a crash between the gateway's "OK" and our record can send one SMS twice (at-least-once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from billing_core.db.operations_models import NotificationChannel
from billing_core.operations.outbox import ClaimedMessage
from channels.notify.http import HttpError, KeepAliveHttp
from channels.notify.policy import DeliveryPolicy
from channels.notify.senders import SendResult, idempotency_key, template_values

API_VERSION = "2017-05-25"
# Worth another try later: flow control, the platform's own faults.
RETRYABLE = {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isv.OUT_OF_SERVICE", "Throttling",
             "Throttling.User", "ServiceUnavailable", "InternalError", "isv.AMOUNT_NOT_ENOUGH"}


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the signature needs it (space → %20, * → %2A, ~ kept)."""
    return quote(value, safe="~")


def sign(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """The v1 RPC signature of `params` (without `Signature`)."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsSender:
    channel = NotificationChannel.SMS.value
    idempotent = False

    def __init__(self, access_key_id: str, access_key_secret: str, sign_name: str, endpoint: str,
                 policy: DeliveryPolicy, region: str = "cn-hangzhou", timeout: float = 5.0) -> None:
        self._key_id, self._secret = access_key_id, access_key_secret
        self._sign_name, self._region = sign_name, region
        self._policy = policy
        self._http = KeepAliveHttp(endpoint, timeout)

    def params(self, message: ClaimedMessage, now: datetime | None = None) -> dict[str, str]:
        rule = self._policy.templates.get(message.template)
        if rule is None:
            raise KeyError(message.template)
        params = {
            "AccessKeyId": self._key_id, "Action": "SendSms", "Format": "JSON", "RegionId": self._region,
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
            "Timestamp": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": API_VERSION,
            "PhoneNumbers": message.recipient or "", "SignName": self._sign_name,
            "TemplateCode": rule.sms_template_code,
            "TemplateParam": json.dumps(template_values(message, rule.sms_fields), ensure_ascii=False),
            "OutId": idempotency_key(message),
        }
        params["Signature"] = sign(params, self._secret)
        return params

    def send(self, message: ClaimedMessage) -> SendResult:
        if not message.recipient:
            return SendResult("failed", "no_phone", "no phone number on file")
        try:
            params = self.params(message)
        except KeyError:
            return SendResult("failed", "no_template", f"no SMS template for {message.template!r} in the policy")
        try:
            status, answer = self._http.post_form("/", params)
        except TimeoutError:
            return SendResult("retry", "timeout", "the SMS gateway did not answer in time")
        except HttpError as exc:
            return SendResult("retry", "transport", str(exc))
        if not isinstance(answer, dict):
            return SendResult("retry", "transport", f"HTTP {status}: not a JSON object")
        code = str(answer.get("Code", f"HTTP{status}"))
        text = str(answer.get("Message", ""))
        if code == "OK":
            return SendResult("sent", code, text, provider_message_id=answer.get("BizId"),
                              raw={"RequestId": answer.get("RequestId")})
        if code in RETRYABLE or status >= 500:
            return SendResult("retry", code, text, raw=answer)
        return SendResult("failed", code, text, raw=answer)  # bad number, template, signature, key…

    def close(self) -> None:
        self._http.close()
