"""WeChat service account with the real agent, driven by messages wechatpy builds and encrypts."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import session_scope
from channels.app import create_app
from channels.wechat import VOICE_NOT_UNDERSTOOD, WELCOME
from tests.channels.conftest import make_settings
from tests.channels.cs_api_server import CustomerServiceApi, customer_service_api
from tests.channels.wechat_messages import encrypted_request, event_xml, plain_request, text_xml, voice_xml

TOKEN, APP_ID, SECRET = "wxtoken", "wx1234567890abcdef", "app-secret-1"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues them
_ids = itertools.count(int(time.time() * 1000))


def _msg_id() -> int:
    return next(_ids)


class SlowAgent:
    """The real agent behind a delay, as under load: the passive-reply deadline passes."""

    def __init__(self, agent: Any, delay: float) -> None:
        self.agent, self.delay = agent, delay

    def handle(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.delay)
        return self.agent.handle(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.agent, name)


@pytest.fixture
def cs_api() -> Iterator[CustomerServiceApi]:
    with customer_service_api(APP_ID, SECRET) as api:
        yield api


@pytest.fixture
def wechat(agent: Any, cs_api: CustomerServiceApi) -> Iterator[TestClient]:
    # A generous passive-reply deadline: these tests check the reply itself on a shared, busy machine;
    # the 4.5 s fallback is tested on its own below.
    settings = make_settings(wechat_aes_key=AES_KEY, wechat_app_secret=SECRET,
                             wechat_api_base=cs_api.base_url, wechat_reply_deadline_seconds=30)
    with TestClient(create_app(settings, agent)) as client:
        yield client


def _reply(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return xmltodict.parse(response.text)["xml"]


def _turns(openid: str) -> int:
    with session_scope() as session:
        return session.scalar(
            select(func.count(TurnRecord.id)).join(ConversationRecord)
            .where(ConversationRecord.conversation_id == f"wechat-{openid}")) or 0


def test_text_message_plain_mode(wechat: TestClient) -> None:
    openid = "o_plain_text_user"
    url, body = plain_request(TOKEN, text_xml(openid, "电费怎么交", _msg_id()), openid)
    reply = _reply(wechat.post(url, content=body))
    assert reply["ToUserName"] == openid and reply["MsgType"] == "text"
    assert reply["Content"].strip()
    assert _turns(openid) == 1


def test_text_message_safe_mode_round_trip(wechat: TestClient) -> None:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    openid = "o_aes_user"
    url, body, _query = encrypted_request(crypto, TOKEN, text_xml(openid, "电费怎么交", _msg_id()))
    response = wechat.post(url, content=body)
    assert response.status_code == 200
    envelope = xmltodict.parse(response.text)["xml"]
    assert "Encrypt" in envelope and "Content" not in envelope  # nothing in clear text
    inner = crypto.decrypt_message(response.text, envelope["MsgSignature"], envelope["TimeStamp"],
                                   envelope["Nonce"])
    reply = xmltodict.parse(inner)["xml"]
    assert reply["ToUserName"] == openid and reply["Content"].strip()


def test_safe_mode_with_a_forged_message_signature_is_403(wechat: TestClient) -> None:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    url, body, _ = encrypted_request(crypto, TOKEN, text_xml("o_forged", "你好", _msg_id()))
    url = url.replace("msg_signature=", "msg_signature=0")
    assert wechat.post(url, content=body).status_code == 403
    other = WeChatCrypto(TOKEN, AES_KEY[::-1][:43], APP_ID)  # encrypted with someone else's key
    url, body, _ = encrypted_request(other, TOKEN, text_xml("o_forged", "你好", _msg_id()))
    assert wechat.post(url, content=body).status_code in (400, 403)


def test_voice_uses_wechats_recognition(wechat: TestClient) -> None:
    openid = "o_voice_user"
    url, body = plain_request(TOKEN, voice_xml(openid, "电费怎么交", _msg_id()))
    assert _reply(wechat.post(url, content=body))["Content"].strip()
    assert _turns(openid) == 1
    url, body = plain_request(TOKEN, voice_xml(openid, "", _msg_id()))
    assert _reply(wechat.post(url, content=body))["Content"] == VOICE_NOT_UNDERSTOOD
    assert _turns(openid) == 1  # nothing heard, no turn


def test_subscribe_and_menu_click(wechat: TestClient) -> None:
    openid = "o_event_user"
    url, body = plain_request(TOKEN, event_xml(openid, "subscribe"))
    assert _reply(wechat.post(url, content=body))["Content"] == WELCOME
    click = event_xml(openid, "CLICK", "BILL_QUERY", create_time=int(time.time()) + 1)
    url, body = plain_request(TOKEN, click)
    reply = _reply(wechat.post(url, content=body))
    assert reply["Content"].strip() and reply["Content"] != WELCOME
    assert _turns(openid) == 1
    unknown = event_xml(openid, "CLICK", "NO_SUCH_KEY", create_time=int(time.time()) + 2)
    url, body = plain_request(TOKEN, unknown)
    assert wechat.post(url, content=body).text == "success"


def test_retries_of_one_message_are_answered_once(wechat: TestClient) -> None:
    openid = "o_retry_user"
    xml = text_xml(openid, "电费怎么交", _msg_id())
    replies = []
    for _ in range(3):  # WeChat's three tries
        url, body = plain_request(TOKEN, xml)
        replies.append(_reply(wechat.post(url, content=body))["Content"])
    assert len(set(replies)) == 1
    assert _turns(openid) == 1
    assert 'powerdesk_duplicate_messages_total{channel="wechat"} 2.0' in wechat.get("/metrics").text


def test_slow_turn_answers_success_then_sends_by_customer_service_api(agent: Any,
                                                                     cs_api: CustomerServiceApi) -> None:
    settings = make_settings(wechat_app_secret=SECRET, wechat_api_base=cs_api.base_url,
                             wechat_reply_deadline_seconds=0.3)
    openid = "o_slow_user"
    xml = text_xml(openid, "电费怎么交", _msg_id())
    with TestClient(create_app(settings, SlowAgent(agent, 1.0))) as client:
        url, body = plain_request(TOKEN, xml)
        assert client.post(url, content=body).text == "success"
        url, body = plain_request(TOKEN, xml)  # WeChat's retry while the turn still runs
        assert client.post(url, content=body).text == "success"
        deadline = time.monotonic() + 15
        while not cs_api.sent and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    assert cs_api.rejected == []
    assert len(cs_api.sent) == 1
    sent = cs_api.sent[0]
    assert sent["touser"] == openid and sent["msgtype"] == "text"
    with session_scope() as session:
        turns = session.scalars(select(TurnRecord).join(ConversationRecord)
                                .where(ConversationRecord.conversation_id == f"wechat-{openid}")).all()
    assert len(turns) == 1 and turns[0].reply_text == sent["text"]["content"]
