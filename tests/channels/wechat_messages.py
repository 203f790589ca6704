"""WeChat callback requests as WeChat's servers send them, built and checked with wechatpy."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

OFFICIAL_ACCOUNT = "gh_powerdesk01"


def signature(token: str, timestamp: str, nonce: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce)
    return signer.signature


def text_xml(openid: str, content: str, msg_id: int, create_time: int | None = None) -> str:
    xml = (f"<xml><ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>"
           f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")
    assert parse_message(xml).type == "text"  # wechatpy reads it as WeChat's text message
    return xml


def voice_xml(openid: str, recognition: str, msg_id: int) -> str:
    xml = (f"<xml><ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>"
           f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{int(time.time())}</CreateTime>"
           "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[media_id_1]]></MediaId>"
           f"<Format><![CDATA[amr]]></Format><Recognition><![CDATA[{recognition}]]></Recognition>"
           f"<MsgId>{msg_id}</MsgId></xml>")
    assert (parse_message(xml).recognition or "") == recognition
    return xml


def event_xml(openid: str, event: str, key: str = "", create_time: int | None = None) -> str:
    xml = (f"<xml><ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>"
           f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>")
    assert parse_message(xml).event == event.lower()
    return xml


def plain_request(token: str, xml: str, openid: str = "") -> tuple[str, bytes]:
    """(URL with signature query, body) for 明文模式."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    query = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid:
        query["openid"] = openid
    return "/wechat?" + urlencode(query), xml.encode()


def encrypted_request(crypto: WeChatCrypto, token: str, xml: str) -> tuple[str, bytes, dict[str, Any]]:
    """(URL, body, params) for 安全模式: the body is wechatpy's encrypted envelope."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    msg_signature = parse_envelope_signature(envelope)
    query = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "encrypt_type": "aes", "msg_signature": msg_signature}
    return "/wechat?" + urlencode(query), envelope.encode(), query


def parse_envelope_signature(envelope: str) -> str:
    import xmltodict

    return xmltodict.parse(envelope)["xml"]["MsgSignature"]
