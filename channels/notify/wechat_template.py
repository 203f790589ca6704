"""WeChat template messages (模板消息): `POST /cgi-bin/message/template/send?access_token=…`.

The access token comes from `GET /cgi-bin/token` (or, with `stable_token`, `POST /cgi-bin/stable_token`,
which hands every caller the same token while it is valid: use it when several processes send,
since each plain fetch retires the token the others hold) and is cached until shortly before it expires;
an answer of 40001 / 42001 / 40014 (token invalid or expired, e.g. fetched anew elsewhere) drops
the cache and the send is retried once with a fresh token. 43004 (the customer unfollowed the
account) cannot be delivered here: the worker queues the same notice as an SMS. Every send
carries `client_msg_id` = the outbox key, on which WeChat de-duplicates (one message per openid
and id, for 10 minutes), so a resend after a crash is not delivered twice.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from billing_core.db.operations_models import NotificationChannel
from billing_core.operations.outbox import ClaimedMessage
from channels.notify.http import HttpError, KeepAliveHttp
from channels.notify.policy import DeliveryPolicy
from channels.notify.senders import SendResult, idempotency_key, template_values

TOKEN_ERRORS = {40001, 42001, 40014}
UNSUBSCRIBED = 43004
# Refused for good: bad openid, bad template, bad argument, no permission, content refused.
PERMANENT = {40003, 40037, 47003, 48001, 40036, 87014}
TOKEN_MARGIN_SECONDS = 300


class WeChatTemplateSender:
    channel = NotificationChannel.WECHAT_TEMPLATE.value
    idempotent = True

    def __init__(self, app_id: str, app_secret: str, api_base: str, policy: DeliveryPolicy,
                 timeout: float = 5.0, stable_token: bool = False) -> None:
        self._app_id, self._secret = app_id, app_secret
        self._stable = stable_token
        self._policy = policy
        self._http = KeepAliveHttp(api_base, timeout)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0

    def _access_token(self, stale: str | None = None) -> str:
        with self._lock:
            if self._token and self._token != stale and time.monotonic() < self._token_expires:
                return self._token
            if self._stable:
                _status, answer = self._http.post_json("/cgi-bin/stable_token", {
                    "grant_type": "client_credential", "appid": self._app_id, "secret": self._secret,
                    "force_refresh": False})
            else:
                _status, answer = self._http.get_json("/cgi-bin/token", {
                    "grant_type": "client_credential", "appid": self._app_id, "secret": self._secret})
            if not isinstance(answer, dict) or "access_token" not in answer:
                raise TokenError(answer)
            self._token = str(answer["access_token"])
            lifetime = float(answer.get("expires_in", 7200))
            self._token_expires = time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, lifetime / 2)
            return self._token

    def body(self, message: ClaimedMessage) -> dict[str, Any]:
        rule = self._policy.templates.get(message.template)
        if rule is None:
            raise KeyError(message.template)
        data = {name: {"value": value} for name, value in template_values(message, rule.wechat_fields).items()}
        return {"touser": message.recipient, "template_id": rule.wechat_template_id, "data": data,
                "client_msg_id": idempotency_key(message)}

    def send(self, message: ClaimedMessage) -> SendResult:
        if not message.recipient:
            return SendResult("fallback_sms", "no_openid", "no openid on file")
        try:
            body = self.body(message)
        except KeyError:
            return SendResult("failed", "no_template", f"no WeChat template for {message.template!r} in the policy")
        try:
            token = self._access_token()
            answer = self._post(token, body)
            if answer.get("errcode") in TOKEN_ERRORS:
                answer = self._post(self._access_token(stale=token), body)
        except TokenError as exc:
            return SendResult("retry", str(exc.answer.get("errcode", "token")), str(exc.answer.get("errmsg", "")),
                              raw=exc.answer)
        except TimeoutError:
            return SendResult("retry", "timeout", "WeChat did not answer in time")
        except HttpError as exc:
            return SendResult("retry", "transport", str(exc))
        code = answer.get("errcode", 0)
        text = str(answer.get("errmsg", ""))
        if code == 0:
            return SendResult("sent", "0", text, provider_message_id=str(answer.get("msgid", "")) or None)
        if code == UNSUBSCRIBED:
            return SendResult("fallback_sms", str(code), text, raw=answer)
        if code in PERMANENT:
            return SendResult("failed", str(code), text, raw=answer)
        return SendResult("retry", str(code), text, raw=answer)  # -1 busy, 45009 rate limit, others

    def _post(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self._http.post_json("/cgi-bin/message/template/send", body, {"access_token": token})
        if status != 200 or not isinstance(answer, dict):
            raise HttpError(f"HTTP {status}")
        return answer

    def close(self) -> None:
        self._http.close()


class TokenError(Exception):
    def __init__(self, answer: Any) -> None:
        self.answer: dict[str, Any] = answer if isinstance(answer, dict) else {"errmsg": str(answer)[:200]}
        super().__init__(self.answer.get("errmsg", "no access_token"))
