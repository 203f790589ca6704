"""Alipay 生活号 (支付宝开放平台, formerly 服务窗) message gateway: the whole channel in one module.

Alipay POSTs every message to our 开发者网关 as a form: `service`, `sign_type=RSA2`, `charset`
(GBK or UTF-8; the body's percent-escapes are in that charset), `biz_content` (an XML message)
and `sign`. The signature is SHA256withRSA (PKCS#1 v1.5, base64) by Alipay's private key over
every other non-empty field, sorted by name, as `k=v` joined with `&` — `sign` and `sign_type`
left out — and is checked with the Alipay public key. Two services arrive:

- `alipay.service.check` (EventType `verifygw`): the gateway check when the 生活号 is
  configured; we answer our app public key.
- `alipay.mobile.public.message.notify`: a customer's text, or an event (follow, enter, menu
  click). We answer an `ack` at once; the agent's reply goes out through the open API
  `alipay.open.public.message.custom.send`, a request signed with our app private key.

Every answer we sign is `<alipay><response>…</response><sign>…</sign><sign_type>RSA2</sign_type>
</alipay>`, the signature (app private key) over the text inside `<response>`.

Bad signature → 403; a missing field, an unknown service, undecodable form or XML, a DOCTYPE →
400; not configured → 404. The customer is identified by the Alipay user id in `FromUserId`
(envelope, signed); a user we do not know goes through the usual 户号 + 后4位 verification.

Settings (environment): `POWERDESK_ALIPAY_APP_ID`, `POWERDESK_ALIPAY_APP_PRIVATE_KEY_PATH` (our
RSA2048 application private key, PEM), `POWERDESK_ALIPAY_PUBLIC_KEY_PATH` (the Alipay public key
from the open platform console, PEM or the bare base64 the console shows),
`POWERDESK_ALIPAY_GATEWAY` (default `https://openapi.alipay.com/gateway.do`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as SafeET
import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from defusedxml import DefusedXmlException
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response

from channels.adapter import ChannelAdapter
from channels.deps import Services, ServicesDep
from channels.responses import FORBIDDEN, TOO_LARGE, error_response
from tools.channels import ChannelSpec, register_channel

log = logging.getLogger("powerdesk.channels.alipay")

SPEC = register_channel(ChannelSpec("alipay", "支付宝生活号", identity_key="alipay_user_id"))

CHECK_SERVICE = "alipay.service.check"
NOTIFY_SERVICE = "alipay.mobile.public.message.notify"
SEND_METHOD = "alipay.open.public.message.custom.send"
DEFAULT_GATEWAY = "https://openapi.alipay.com/gateway.do"
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk", "gb18030": "gb18030"}
BEIJING = ZoneInfo("Asia/Shanghai")

WELCOME = ("感谢关注南网电费生活号！您可以直接发消息查电费、问账单、查缴费。"
           "首次查询需要核验身份：请发送户号和登记手机号后四位。")
RATE_LIMITED_TEXT = "您的消息太频繁了，请稍后再试。"
MENU_TEXT = {"BILL_QUERY": "查询本月电费", "BILL_EXPLAIN": "为什么我的电费变高了",
             "PAY_STATUS": "我的电费交了吗", "DISPUTE": "我要对电费提出异议", "HUMAN": "转人工"}
_HOSTILE = re.compile(r"<!\s*(DOCTYPE|ENTITY)|<\?xml-stylesheet", re.IGNORECASE)
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_USER_ID = re.compile(r"^[A-Za-z0-9+/=_-]{8,128}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
_background: set[asyncio.Task[Any]] = set()


@dataclass(frozen=True)
class AlipaySettings:
    app_id: str
    app_private_key: rsa.RSAPrivateKey
    alipay_public_key: rsa.RSAPublicKey
    gateway: str = DEFAULT_GATEWAY

    @classmethod
    def from_env(cls) -> AlipaySettings | None:
        """The settings, or None when the channel is not configured (no key paths set)."""
        private_path = os.environ.get("POWERDESK_ALIPAY_APP_PRIVATE_KEY_PATH", "")
        public_path = os.environ.get("POWERDESK_ALIPAY_PUBLIC_KEY_PATH", "")
        if not private_path or not public_path:
            return None
        app_id = os.environ.get("POWERDESK_ALIPAY_APP_ID", "")
        if not app_id.isdigit():
            raise ValueError(f"POWERDESK_ALIPAY_APP_ID: the 16-digit app id, got {app_id!r}")
        private = serialization.load_pem_private_key(Path(private_path).read_bytes(), password=None)
        public = load_public_key(Path(public_path).read_text())
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError("POWERDESK_ALIPAY_APP_PRIVATE_KEY_PATH: not an RSA private key")
        return cls(app_id, private, public, os.environ.get("POWERDESK_ALIPAY_GATEWAY") or DEFAULT_GATEWAY)

    def app_public_key_b64(self) -> str:
        """Our public key as the open platform shows it: base64 DER, no PEM lines."""
        der = self.app_private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """A PEM public key, or the bare base64 the Alipay console shows."""
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        text = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(
            text[i:i + 64] for i in range(0, len(text), 64)) + "\n-----END PUBLIC KEY-----\n"
    key = serialization.load_pem_public_key(text.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("POWERDESK_ALIPAY_PUBLIC_KEY_PATH: not an RSA public key")
    return key


# ------------------------------------------------------------------ RSA2 signatures

def sign_content(params: dict[str, str], exclude: tuple[str, ...] = ("sign", "sign_type")) -> str:
    """The text Alipay signs: non-empty fields but `exclude`, sorted by name, `k=v` joined by `&`."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in exclude and v != "")


def rsa2_sign(private_key: rsa.RSAPrivateKey, content: str, charset: str = "utf-8") -> str:
    signature = private_key.sign(content.encode(charset), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def rsa2_verify(public_key: rsa.RSAPublicKey, content: str, signature: str, charset: str = "utf-8") -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, content.encode(charset), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, UnicodeEncodeError):
        return False
    return True


def signed_response(settings: AlipaySettings, content: str, charset: str) -> Response:
    """`<alipay><response>content</response><sign/>…` in the request's charset."""
    sign = rsa2_sign(settings.app_private_key, content, charset)
    xml = (f'<?xml version="1.0" encoding="{charset.upper()}"?><alipay><response>{content}</response>'
           f"<sign>{sign}</sign><sign_type>RSA2</sign_type></alipay>")
    return Response(xml.encode(charset), media_type=f"application/xml; charset={charset.upper()}")


# ------------------------------------------------------------------ the callback

def _settings(services: Services) -> AlipaySettings:
    if "alipay" not in services.channel_clients:
        services.channel_clients["alipay"] = AlipaySettings.from_env()
    settings = services.channel_clients["alipay"]
    if settings is None:
        # Not configured: this site has no 生活号, so the gateway does not exist (not a server fault).
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="alipay: 未配置生活号（POWERDESK_ALIPAY_APP_PRIVATE_KEY_PATH / "
                                   "POWERDESK_ALIPAY_PUBLIC_KEY_PATH）")
    return settings


def _form(body: bytes, charset_query: str | None) -> tuple[dict[str, str], str]:
    """The form fields, decoded in the charset the request names; 400 when it cannot be read."""
    try:
        text = body.decode("ascii")  # a form body is percent-escaped ASCII
        first = dict(parse_qsl(text, keep_blank_values=True, encoding="latin-1", strict_parsing=bool(text)))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="body: 不是 application/x-www-form-urlencoded") from exc
    named = (charset_query or first.get("charset") or "GBK").strip().lower()
    charset = CHARSETS.get(named)
    if charset is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"charset: 不支持的字符集 {named!r}")
    try:
        fields = dict(parse_qsl(text, keep_blank_values=True, encoding=charset, errors="strict"))
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"body: 不是 {charset} 编码") from exc
    for name in ("service", "sign_type", "sign", "biz_content"):
        if not fields.get(name, "").strip():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{name}: 缺少该字段")
    if fields["sign_type"] != "RSA2":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="sign_type: 只接受 RSA2")
    return fields, charset


def _message(biz_content: str) -> dict[str, str]:
    """biz_content's <XML> message as a flat dict (Text/Content as `Content`); 400 if malformed."""
    if _HOSTILE.search(biz_content):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="biz_content: 不接受 DOCTYPE/实体声明")
    try:
        root = SafeET.fromstring(_DECLARATION.sub("", biz_content), forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="biz_content: XML 格式错误") from exc
    if root.tag != "XML":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="biz_content: 根元素必须是 <XML>")
    message = {child.tag: (child.text or "").strip() for child in root if len(child) == 0}
    message["Content"] = (root.findtext("Text/Content") or "").strip()
    for name in ("MsgType", "CreateTime"):
        if not message.get(name):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"biz_content.{name}: 缺少该字段")
    if not message["CreateTime"].isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="biz_content.CreateTime: 应为整数时间戳")
    return message


def _sender(message: dict[str, str]) -> str:
    sender = message.get("FromUserId") or message.get("FromAlipayUserId") or ""
    if not _USER_ID.match(sender):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="biz_content.FromUserId: 缺少或格式错误")
    return sender


def conversation_id_for(user_id: str) -> str:
    """`alipay-<user id>`; an id with + / = (older openids) is hashed so the id stays path-safe."""
    if _SAFE_ID.match(user_id):
        return f"alipay-{user_id}"
    return "alipay-h" + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def _ack(settings: AlipaySettings, to_user: str) -> str:
    return (f"<XML><ToUserId><![CDATA[{to_user}]]></ToUserId><AppId><![CDATA[{settings.app_id}]]></AppId>"
            f"<CreateTime>{int(time.time() * 1000)}</CreateTime><MsgType><![CDATA[ack]]></MsgType></XML>")


def _incoming_text(message: dict[str, str]) -> tuple[str | None, str | None]:
    """(text for the agent, fixed reply without a turn)."""
    kind = message.get("MsgType", "").lower()
    if kind == "text":
        return (message["Content"] or None), None
    if kind == "event":
        event = message.get("EventType", "").lower()
        if event == "follow":
            return None, WELCOME
        if event == "click":
            return MENU_TEXT.get(message.get("ActionParam", "")), None
    return None, None  # enter, unfollow, images …: acknowledged, nothing to say


_FORM_SCHEMA = {
    "type": "object", "required": ["service", "sign_type", "biz_content", "sign"],
    "properties": {
        "service": {"type": "string", "enum": [CHECK_SERVICE, NOTIFY_SERVICE]},
        "sign_type": {"type": "string", "enum": ["RSA2"]},
        "charset": {"type": "string", "enum": ["GBK", "UTF-8"], "description": "默认 GBK"},
        "biz_content": {"type": "string", "minLength": 1, "description": "<XML> 消息"},
        "sign": {"type": "string", "minLength": 1, "description": "支付宝私钥 SHA256withRSA 签名（base64）"},
        "app_id": {"type": "string"},
    },
}

router = APIRouter(prefix="/alipay", tags=["支付宝生活号"], responses={
    400: error_response("缺少字段、字符集不支持、biz_content 不是合规的 XML，或 sign_type 不是 RSA2"),
    **FORBIDDEN, 404: error_response("本站未配置生活号（密钥路径未设置）"), **TOO_LARGE})


@router.post("", summary="生活号开发者网关：网关验证与消息接收（RSA2 验签）", response_class=Response,
             responses={200: {"content": {"application/xml": {}}}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA}}}})
async def gateway(request: Request, services: ServicesDep,
                  charset: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    settings = _settings(services)
    fields, encoding = _form(await request.body(), charset)
    if not rsa2_verify(settings.alipay_public_key, sign_content(fields), fields["sign"], encoding):
        log.warning("alipay request refused: signature does not match")
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="sign: 签名校验失败")
    message = _message(fields["biz_content"])
    if message.get("AppId") and message["AppId"] != settings.app_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="biz_content.AppId: 不是本生活号")
    service = fields["service"]
    if service == CHECK_SERVICE:
        content = f"<biz_content>{settings.app_public_key_b64()}</biz_content><success>true</success>"
        return signed_response(settings, content, encoding)
    if service != NOTIFY_SERVICE:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"service: 不支持的接口 {service!r}")

    sender = _sender(message)
    ack = signed_response(settings, _ack(settings, sender), encoding)
    text, fixed = _incoming_text(message)
    if text is None and fixed is None:
        return ack
    key = f"alipay:msg:{message.get('MsgId') or sender + ':' + message['CreateTime']}"
    if not await services.blocking(services.once.claim, key):
        services.metrics.duplicates.labels("alipay").inc()
        return ack  # a resend: the first delivery's reply is on its way
    if not services.limiter.allow(f"alipay:{sender}"):
        services.metrics.rate_limited.labels("alipay").inc()
        text, fixed = None, RATE_LIMITED_TEXT
    # The ack goes back now; the answer follows through the open API, as Alipay expects.
    task = asyncio.ensure_future(_answer(services, key, sender, text, fixed))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return ack


async def _answer(services: Services, key: str, sender: str, text: str | None, fixed: str | None) -> None:
    try:
        if fixed is not None:
            await push_text(services, sender, fixed)
            return
        assert text is not None
        conversation_id = conversation_id_for(sender)
        message_id = key if len(key) <= 128 else "alipay:msg:h" + hashlib.sha256(key.encode()).hexdigest()
        reply = await services.turn(conversation_id, "alipay", text, message_id,
                                    identity=ADAPTER.identity(sender))
        if reply.held_by_staff:
            await services.record_held(conversation_id, "alipay", text)
            return  # a person answers from the console (pushed through this channel)
        await push_text(services, sender, reply.text)
    except Exception:  # noqa: BLE001 - logged; the customer can ask again
        log.exception("alipay answer failed", extra={"message_key": key})


# ------------------------------------------------------------------ the open API (push)

def send_request(settings: AlipaySettings, user_id: str, text: str) -> dict[str, str]:
    """The signed form of `alipay.open.public.message.custom.send` with a text message."""
    params = {
        "app_id": settings.app_id, "method": SEND_METHOD, "format": "JSON", "charset": "utf-8",
        "sign_type": "RSA2", "version": "1.0",
        "timestamp": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "biz_content": json.dumps({"to_user_id": user_id, "msg_type": "text", "text": {"content": text}},
                                  ensure_ascii=False, separators=(",", ":")),
    }
    params["sign"] = rsa2_sign(settings.app_private_key, sign_content(params, exclude=("sign",)))
    return params


def _send(settings: AlipaySettings, user_id: str, text: str) -> None:
    response = httpx.post(settings.gateway, data=send_request(settings, user_id, text), timeout=5)
    response.raise_for_status()
    answer = response.json().get("alipay_open_public_message_custom_send_response") or {}
    if str(answer.get("code")) != "10000":
        raise RuntimeError(f"alipay custom.send refused: {answer.get('code')} {answer.get('sub_msg') or answer.get('msg')}")


async def push_text(services: Services, user_id: str, text: str) -> None:
    """A message to a 生活号 follower (agent replies, staff replies) through the open API."""
    settings = _settings(services)
    await services.blocking(_send, settings, user_id, text, off_loop=True)


ADAPTER = ChannelAdapter(spec=SPEC, router=router, push=push_text)
