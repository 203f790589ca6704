"""Local stand-ins for the providers the outbox worker talks to, speaking their real protocols.

- `FakeWeChat`: `GET /cgi-bin/token` (checks appid, secret, grant_type) and
  `POST /cgi-bin/message/template/send?access_token=` (checks the token, touser, template_id,
  data of {"value": …}); de-duplicates on openid + client_msg_id as WeChat does; can expire the
  token (40001), answer 43004 for unfollowed openids, be busy (-1) or hang (time-outs).
- `FakeAliyunSms`: dysmsapi `SendSms` (form POST) that recomputes the HMAC-SHA1 signature with
  the secret, refuses a reused SignatureNonce or a stale Timestamp, checks the phone number and
  the TemplateParam JSON, like the real gateway; no idempotency (it has none).
- `smtp_server`: aiosmtpd on loopback, recording every message; can refuse recipients.

Every fake counts what reached it, so tests count deliveries at the provider, not in our tables.
Used by tests/notify and benchmarks/bench_outbox.py.
"""

from __future__ import annotations

import json
import os
import signal
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlparse

from channels.notify.sms_aliyun import sign


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (time-out tests) closes the socket mid-reply


def _json_reply(handler: BaseHTTPRequestHandler, payload: dict[str, Any], status: int = 200) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def _serve(state: Any, handler: type[BaseHTTPRequestHandler]) -> Iterator[Any]:
    server = _Server(("127.0.0.1", 0), handler)
    server.state = state  # type: ignore[attr-defined]
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- WeChat ------------------------------------------------------------------------------------

@dataclass
class FakeWeChat:
    app_id: str = "wx1234567890abcdef"
    secret: str = "wechat-test-secret"
    base_url: str = ""
    token: str = "TOKEN-1"
    token_requests: int = 0  # GET /cgi-bin/token
    stable_token_requests: int = 0  # POST /cgi-bin/stable_token
    unsubscribed: set[str] = field(default_factory=set)
    busy_next: int = 0  # answer -1 (system busy) to this many sends
    hang_seconds: float = 0.0  # sleep before answering a send (time-outs)
    delay_seconds: float = 0.0  # a provider's normal latency
    # (pid, n): once n messages are delivered, SIGKILL worker pid right after WeChat took one of its own
    kill_at: tuple[int, int] | None = None
    attempts: Counter[str] = field(default_factory=Counter)  # client_msg_id -> sends received
    delivered: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (openid, id) -> body
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_msgid: int = 1000

    def expire_token(self) -> None:
        """The token handed out stops working (as when another process fetched a new one)."""
        with self.lock:
            self.token = f"TOKEN-{int(self.token.split('-')[1]) + 1}"

    def answer_send(self, token: str | None, body: dict[str, Any], agent: str = "") -> dict[str, Any]:
        with self.lock:
            if token != self.token:
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            data = body.get("data")
            if not (isinstance(body.get("touser"), str) and body["touser"] and body.get("template_id")
                    and isinstance(data, dict) and data
                    and all(isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values())):
                self.rejected.append(json.dumps(body, ensure_ascii=False))
                return {"errcode": 47003, "errmsg": "argument invalid!"}
            key = str(body.get("client_msg_id", ""))
            self.attempts[key] += 1
            if self.busy_next > 0:
                self.busy_next -= 1
                return {"errcode": -1, "errmsg": "system error"}
            if body["touser"] in self.unsubscribed:
                return {"errcode": 43004, "errmsg": "require subscribe"}
            slot = (body["touser"], key)
            if key and slot in self.delivered:  # 防重入: same openid + client_msg_id → one message
                return {"errcode": 0, "errmsg": "ok", "msgid": self.delivered[slot]["msgid"]}
            self._next_msgid += 1
            self.delivered[slot] = {**body, "msgid": self._next_msgid}
            if (self.kill_at and len(self.delivered) >= self.kill_at[1]
                    and agent.endswith(f"/{self.kill_at[0]}")):
                # The worker dies after the provider took its message, before it hears the answer:
                # the crash window between send and record.
                os.kill(self.kill_at[0], signal.SIGKILL)
                self.kill_at = None
            return {"errcode": 0, "errmsg": "ok", "msgid": self._next_msgid}


class _WeChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        state: FakeWeChat = self.server.state  # type: ignore[attr-defined]
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if (url.path == "/cgi-bin/token" and query.get("grant_type") == ["client_credential"]
                and query.get("appid") == [state.app_id] and query.get("secret") == [state.secret]):
            with state.lock:
                state.token_requests += 1
                token = state.token
            _json_reply(self, {"access_token": token, "expires_in": 7200})
        else:
            _json_reply(self, {"errcode": 40013, "errmsg": "invalid appid"})

    def do_POST(self) -> None:
        state: FakeWeChat = self.server.state  # type: ignore[attr-defined]
        url = urlparse(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path == "/cgi-bin/stable_token":
            asked = json.loads(raw or b"{}")
            if (asked.get("grant_type"), asked.get("appid"), asked.get("secret")) != (
                    "client_credential", state.app_id, state.secret):
                _json_reply(self, {"errcode": 40013, "errmsg": "invalid appid"})
                return
            with state.lock:
                state.stable_token_requests += 1
                if asked.get("force_refresh"):
                    state.token = f"TOKEN-{int(state.token.split('-')[1]) + 1}"
                token = state.token  # the same token to every caller while it is valid
            _json_reply(self, {"access_token": token, "expires_in": 7200})
            return
        if url.path != "/cgi-bin/message/template/send":
            _json_reply(self, {"errcode": 404, "errmsg": "not found"}, 404)
            return
        if state.hang_seconds:
            time.sleep(state.hang_seconds)
        if state.delay_seconds:
            time.sleep(state.delay_seconds)
        try:
            body = json.loads(raw)
        except ValueError:
            _json_reply(self, {"errcode": 47001, "errmsg": "data format error"})
            return
        _json_reply(self, state.answer_send(parse_qs(url.query).get("access_token", [None])[0], body,
                                            self.headers.get("User-Agent", "")))


@contextmanager
def fake_wechat(**options: Any) -> Iterator[FakeWeChat]:
    with _serve(FakeWeChat(**options), _WeChatHandler) as state:
        yield state


# --- Aliyun SMS --------------------------------------------------------------------------------

PHONE = re.compile(r"^1[3-9]\d{9}$")
COMMON = ("AccessKeyId", "Action", "Format", "RegionId", "SignatureMethod", "SignatureNonce",
          "SignatureVersion", "Timestamp", "Version", "Signature")


@dataclass
class FakeAliyunSms:
    access_key_id: str = "LTAI-test-key"
    access_key_secret: str = "aliyun-test-secret"
    templates: frozenset[str] = frozenset({"SMS_BILL_ISSUED", "SMS_DUE_SOON", "SMS_DUNNING_1", "SMS_DUNNING_2",
                                           "SMS_ANOMALY", "SMS_FORECAST"})
    base_url: str = ""
    limit_next: int = 0  # answer isv.BUSINESS_LIMIT_CONTROL to this many sends
    hang_seconds: float = 0.0
    nonces: set[str] = field(default_factory=set)
    delivered: list[dict[str, str]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, params: dict[str, str]) -> dict[str, Any]:
        request_id = f"REQ-{len(self.delivered)}-{sum(self.errors.values())}"
        error = self._check(params)
        if error:
            self.errors[error[0]] += 1
            return {"Code": error[0], "Message": error[1], "RequestId": request_id}
        with self.lock:
            if self.limit_next > 0:
                self.limit_next -= 1
                self.errors["isv.BUSINESS_LIMIT_CONTROL"] += 1
                return {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1",
                        "RequestId": request_id}
            self.delivered.append(params)
            biz = f"{len(self.delivered):06d}^0"
        return {"Code": "OK", "Message": "OK", "BizId": biz, "RequestId": request_id}

    def _check(self, params: dict[str, str]) -> tuple[str, str] | None:
        missing = [k for k in COMMON if not params.get(k)]
        if missing:
            return "MissingParameter", f"missing {missing[0]}"
        if params["AccessKeyId"] != self.access_key_id:
            return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        unsigned = {k: v for k, v in params.items() if k != "Signature"}
        if sign(unsigned, self.access_key_secret) != params["Signature"]:
            return "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."
        if (params["Action"], params["Version"], params["SignatureMethod"], params["SignatureVersion"]) != (
                "SendSms", "2017-05-25", "HMAC-SHA1", "1.0"):
            return "InvalidParameter", "Action/Version/Signature method"
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return "InvalidTimeStamp.Format", "Specified time stamp is not valid."
        if abs(datetime.now(UTC) - stamp) > timedelta(minutes=15):
            return "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        with self.lock:
            if params["SignatureNonce"] in self.nonces:
                return "SignatureNonceUsed", "Specified signature nonce was used already."
            self.nonces.add(params["SignatureNonce"])
        if not all(PHONE.match(p) for p in params.get("PhoneNumbers", "").split(",")):
            return "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"
        if not params.get("SignName"):
            return "isv.SMS_SIGNATURE_ILLEGAL", "签名不合法"
        if params.get("TemplateCode") not in self.templates:
            return "isv.SMS_TEMPLATE_ILLEGAL", "模板不合法"
        try:
            variables = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return "isv.INVALID_JSON_PARAM", "JSON参数不合法"
        if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
            return "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"
        return None


class _AliyunHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        state: FakeAliyunSms = self.server.state  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if state.hang_seconds:
            time.sleep(state.hang_seconds)
        params = dict(parse_qsl(urlparse(self.path).query, keep_blank_values=True))
        params.update(parse_qsl(raw, keep_blank_values=True))
        _json_reply(self, state.answer(params))


@contextmanager
def fake_aliyun_sms(**options: Any) -> Iterator[FakeAliyunSms]:
    with _serve(FakeAliyunSms(**options), _AliyunHandler) as state:
        yield state


# --- SMTP --------------------------------------------------------------------------------------

@dataclass
class SmtpInbox:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # addresses answered 550
    defer: set[str] = field(default_factory=set)  # addresses answered 451


@contextmanager
def smtp_server() -> Iterator[SmtpInbox]:
    """aiosmtpd on a free loopback port, recording every message it accepts."""
    from email import message_from_bytes, policy as email_policy

    from aiosmtpd.controller import Controller

    from tests.servers.ports import free_port

    inbox = SmtpInbox("127.0.0.1", free_port())

    class Handler:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            if address in inbox.refuse:
                return "550 5.1.1 mailbox unavailable"
            if address in inbox.defer:
                return "451 4.3.0 try again later"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            inbox.messages.append(message_from_bytes(envelope.content, policy=email_policy.default))
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
