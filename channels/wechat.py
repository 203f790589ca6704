"""WeChat service account (微信服务号) callback: verification, text, voice, events; plain and AES mode.

WeChat waits 5 s for an answer and then resends the message (three tries, maybe to another app
process). Each message is claimed once (MsgId, or FromUserName+CreateTime for events) in the
shared once-store; a turn not done in ~4.5 s answers `success` and its reply goes out later
through the customer-service API, so the customer gets exactly one answer.

Untrusted XML: a DOCTYPE or entity declaration is refused before any parser sees it, and the
rest is checked by defusedxml before wechatpy's xmltodict parses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from typing import Annotated, Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from channels.adapter import ChannelAdapter
from channels.deps import Services, ServicesDep
from channels.responses import BAD_XML, FORBIDDEN, TOO_LARGE
from channels.wechat_client import CustomerServiceClient, WeChatCustomerServiceClient
from tools.channels import channel_spec

log = logging.getLogger("powerdesk.channels.wechat")

router = APIRouter(prefix="/wechat", tags=["微信服务号"], responses={**BAD_XML, **FORBIDDEN, **TOO_LARGE})

WELCOME = ("感谢关注南网电费服务号！您可以直接发消息查电费、问账单、查缴费。"
           "首次查询需要核验身份：请发送户号和登记手机号后四位。")
VOICE_NOT_UNDERSTOOD = "抱歉，没有听清您的语音，请再说一遍或发送文字。"
MENU_TEXT = {  # menu CLICK keys configured on the official account
    "BILL_QUERY": "查询本月电费",
    "BILL_EXPLAIN": "为什么我的电费变高了",
    "PAY_STATUS": "我的电费交了吗",
    "DISPUTE": "我要对电费提出异议",
    "HUMAN": "转人工",
}
_HOSTILE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)|<\?xml-stylesheet", re.IGNORECASE)
_background: set[asyncio.Task[Any]] = set()


def _safe_xml(body: bytes, field: str = "body") -> str:
    """The body as text when it is plain, well-formed XML without DTDs or entities; else 400."""
    if _HOSTILE.search(body):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{field}: 不接受 DOCTYPE/实体声明")
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{field}: XML 格式错误") from exc
    if root.tag != "xml":
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{field}: 根元素必须是 <xml>")
    return body.decode("utf-8")


def _require_message_fields(xml: str) -> None:
    """A WeChat message names its sender, time and type; anything else is not one."""
    root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    for name in ("FromUserName", "CreateTime", "MsgType"):
        if not (root.findtext(name) or "").strip():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"{name}: 缺少该字段")
    if not root.findtext("CreateTime", "").strip().isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="CreateTime: 应为整数时间戳")


def _verify(services: Services, signature: str, timestamp: str, nonce: str) -> None:
    try:
        check_signature(services.settings.wechat_token, signature, timestamp, nonce)
    except InvalidSignatureException as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="signature: 签名校验失败") from exc


def _fresh(services: Services, timestamp: str, nonce: str, body: bytes) -> None:
    """In plain mode WeChat's signature covers token, timestamp and nonce but not the body, so a
    signed query seen once (in a log, say) would carry any body. Accept a signature only near its
    timestamp, and a (timestamp, nonce) pair only with the body it first came with: WeChat's own
    retries resend the same body and pass; a different body under a used signature is refused."""
    window = services.settings.wechat_replay_window_seconds
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > window:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="timestamp: 请求时间超出允许范围")
    key, digest = f"wechat:nonce:{timestamp}:{nonce}", hashlib.sha256(body).hexdigest()
    if services.once.claim(key):
        services.once.record(key, {"body": digest})
        return
    first = services.once.result(key)
    if first is not None and first.get("body") != digest:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="nonce: 该签名已用于另一条消息")


def _crypto(services: Services) -> WeChatCrypto:
    settings = services.settings
    if not settings.wechat_aes_key:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="encrypt_type: 未配置安全模式密钥")
    return WeChatCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)


def customer_service_client(services: Services) -> CustomerServiceClient:
    if services.wechat_client is None:
        settings = services.settings
        services.wechat_client = WeChatCustomerServiceClient(
            settings.wechat_app_id, settings.wechat_app_secret, settings.wechat_api_base)
    return services.wechat_client


@router.get("", response_class=PlainTextResponse, summary="服务器地址验证（回显 echostr）")
def verify_server(
    services: ServicesDep,
    signature: Annotated[str, Query(max_length=64)],
    timestamp: Annotated[str, Query(max_length=16)],
    nonce: Annotated[str, Query(max_length=64)],
    echostr: Annotated[str, Query(max_length=256)],
) -> str:
    _verify(services, signature, timestamp, nonce)
    return echostr


def _incoming_text(message: Any) -> tuple[str | None, str | None]:
    """(text for the agent, fixed reply without a turn) for a parsed WeChat message."""
    kind = message.type
    if kind == "text":
        return message.content, None
    if kind == "voice":
        recognition = (getattr(message, "recognition", None) or "").strip()
        return (recognition, None) if recognition else (None, VOICE_NOT_UNDERSTOOD)
    if kind == "event":
        event = message.event
        if event in ("subscribe", "subscribe_scan"):
            return None, WELCOME
        if event == "click":
            text = MENU_TEXT.get(message.key)
            return (text, None) if text else (None, None)
    return None, None


def _message_key(message: Any) -> str:
    if message.id:
        return f"wechat:msg:{message.id}"
    return f"wechat:event:{message.source}:{message.time}"


@router.post("", summary="接收微信消息与事件", response_class=Response)
async def receive(
    request: Request,
    services: ServicesDep,
    signature: Annotated[str, Query(max_length=64)],
    timestamp: Annotated[str, Query(max_length=16)],
    nonce: Annotated[str, Query(max_length=64)],
    openid: Annotated[str | None, Query(max_length=64)] = None,
    encrypt_type: Annotated[str | None, Query(max_length=16)] = None,
    msg_signature: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    _verify(services, signature, timestamp, nonce)
    body = await request.body()
    _fresh(services, timestamp, nonce, body)
    xml = _safe_xml(body)
    encrypted = (encrypt_type or "raw").lower() == "aes"
    crypto = None
    if encrypted:
        crypto = _crypto(services)
        if not msg_signature:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="msg_signature: 缺少消息签名")
        try:
            xml = crypto.decrypt_message(xml, msg_signature, timestamp, nonce)
        except (InvalidSignatureException, InvalidAppIdException) as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="msg_signature: 消息签名或 AppID 不符") from exc
        except Exception as exc:  # noqa: BLE001 - garbage ciphertext
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="Encrypt: 无法解密") from exc
        xml = _safe_xml(xml.encode("utf-8") if isinstance(xml, str) else xml, "Encrypt")
    _require_message_fields(xml)
    try:
        message = parse_message(xml)
    except (KeyError, TypeError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail="MsgType: 不是微信消息") from exc

    def render(text: str) -> Response:
        reply_xml = TextReply(message=message, content=text).render()
        if crypto is not None:
            reply_xml = crypto.encrypt_message(reply_xml, nonce, timestamp)
        return Response(reply_xml, media_type="application/xml")

    success = PlainTextResponse("success")
    text, fixed = _incoming_text(message)
    if text is None and fixed is None:
        return success
    key = _message_key(message)
    if not services.once.claim(key):
        services.metrics.duplicates.labels("wechat").inc()
        return await _answer_duplicate(services, key, render, success)
    if not services.limiter.allow(f"wechat:{message.source}"):
        services.metrics.rate_limited.labels("wechat").inc()
        fixed = "您的消息太频繁了，请稍后再试。"
    if fixed is not None:
        services.once.record(key, {"mode": "passive", "text": fixed})
        return render(fixed)

    conversation_id = f"wechat-{message.source}"
    turn = asyncio.ensure_future(services.turn(conversation_id, "wechat", text, key, off_loop=True,
                                               identity=ADAPTER.identity(message.source)))
    try:
        reply = await asyncio.wait_for(asyncio.shield(turn), services.settings.wechat_reply_deadline_seconds)
    except TimeoutError:
        services.once.record(key, {"mode": "customer_service"})
        _background.add(task := asyncio.ensure_future(
            _send_later(services, key, conversation_id, text, message.source, turn)))
        task.add_done_callback(_background.discard)
        return success
    if reply.held_by_staff:
        await services.record_held(conversation_id, "wechat", text, off_loop=True)
        services.once.record(key, {"mode": "staff"})
        return success  # a person answers through the customer-service API
    services.once.record(key, {"mode": "passive", "text": reply.text})
    return render(reply.text)


async def _answer_duplicate(services: Services, key: str, render: Any, success: Response) -> Response:
    """A resend: repeat the passive reply WeChat never got, or `success` if it goes another way."""
    deadline = time.monotonic() + services.settings.wechat_reply_deadline_seconds
    while time.monotonic() < deadline:
        result = await run_in_threadpool(services.once.result, key)
        if result is not None:
            if result.get("mode") == "passive":
                return render(result["text"])
            return success
        await asyncio.sleep(0.1)
    return success


async def _send_later(services: Services, key: str, conversation_id: str, text: str, openid: str,
                      turn: asyncio.Future[Any]) -> None:
    try:
        reply = await turn
        if reply.held_by_staff:
            await services.record_held(conversation_id, "wechat", text, off_loop=True)
            services.once.record(key, {"mode": "staff"})
            return
        await push_text(services, openid, reply.text)
        services.once.record(key, {"mode": "customer_service", "sent": True})
    except Exception:  # noqa: BLE001 - logged; the customer can ask again
        log.exception("wechat customer-service send failed", extra={"message_key": key})


async def push_text(services: Services, openid: str, text: str) -> None:
    """A message outside WeChat's passive reply: through the customer-service API."""
    await run_in_threadpool(customer_service_client(services).send_text, openid, text)


ADAPTER = ChannelAdapter(spec=channel_spec("wechat"), router=router, push=push_text)
