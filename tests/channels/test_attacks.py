"""A stranger's requests against a real `powerdesk serve`: no channel reaches another's conversation.

For each channel a customer verifies and reads a bill; then an attacker tries to reach that
conversation from every other channel and from a fresh client, with what an attacker has: the
conversation's id (an openid is no secret), their own valid web token, unsigned or wrongly signed
platform requests. Every attempt must fail, and fail exactly as for an id that never existed.
Every response body the attacker sees is checked for the victims' names, 户号 and amounts.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from billing_core.db.engine import session_scope
from billing_core.db.models import Bill, Customer
from channels.ivr_auth import signed_headers
from tests.channels.serve_process import ServeProcess, serve_process, web_conversation
from tests.channels.test_alipay import FORM, Keys, gateway_form, make_keys, message_xml, signed_answer
from tests.channels.wechat_messages import plain_request, signature, text_xml
from tools.verify_identity import address_street

WECHAT_TOKEN = "attack-test-wechat-token"
IVR_SECRET = "attack-test-ivr-secret"
_msg_ids = count(int(time.time() * 1000))


@dataclass(frozen=True)
class Victim:
    account_no: str
    name: str
    phone: str
    street: str
    openid: str | None
    amounts: tuple[str, ...]  # every bill amount of the customer, as replies print them

    def secrets(self) -> list[str]:
        return [self.account_no, self.name, *self.amounts]


@dataclass
class Attacker:
    """Keeps every response an attacker got, to check none of them carries a victim's data."""

    server: ServeProcess
    seen: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.server.url, timeout=60) as client:  # a fresh client, no cookies
            response = client.request(method, path, **kwargs)
        self.seen.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response


def _victims() -> list[Victim]:
    """Three residential customers with phone, street and bills: web, WeChat (bound openid), hotline."""
    found: list[Victim] = []
    with session_scope() as session:
        customers = session.scalars(select(Customer).where(Customer.phone.is_not(None))
                                    .order_by(Customer.account_no.desc())).all()
        for customer in customers:
            street = address_street(customer.address or "")
            amounts = session.scalars(select(Bill.amount).where(Bill.customer_id == customer.id,
                                                                 Bill.amount > 0)).all()
            if customer.category.value != "residential" or street is None or not amounts:
                continue
            if len(found) == 1 and not customer.wechat_openid:
                continue  # the WeChat victim must have a bound openid
            found.append(Victim(customer.account_no, customer.name, customer.phone, street,
                                customer.wechat_openid, tuple(format(Decimal(a), "f") for a in amounts)))
            if len(found) == 3:
                return found
    raise AssertionError("the demo utility has no three suitable customers")


@pytest.fixture(scope="module")
def alipay_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("attack-alipay"))


@pytest.fixture(scope="module")
def server(seeded_database: str, alipay_keys: Keys) -> Iterator[ServeProcess]:
    env = {"POWERDESK_VAR_DIR": tempfile.mkdtemp(prefix="powerdesk-attack-"),
           "POWERDESK_WECHAT_TOKEN": WECHAT_TOKEN, "POWERDESK_IVR_SECRET": IVR_SECRET,
           "POWERDESK_WECHAT_REPLY_DEADLINE": "60", **alipay_keys.env}
    with serve_process(env) as process:
        yield process


@dataclass
class Sessions:
    victims: list[Victim]
    web_id: str
    web_token: dict[str, str]
    wechat_id: str
    ivr_call: str


def _web_say(server: ServeProcess, cid: str, token: dict[str, str], text: str) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/chat/conversations/{cid}/messages?stream=false",
                          json={"text": text}, headers=token, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _wechat_say(server: ServeProcess, openid: str, text: str) -> str:
    url, body = plain_request(WECHAT_TOKEN, text_xml(openid, text, next(_msg_ids)), openid)
    response = httpx.post(server.url + url, content=body, timeout=60)
    assert response.status_code == 200 and response.text != "success", response.text
    return response.text


def _ivr_say(server: ServeProcess, call_id: str, text: str, caller: str) -> dict[str, Any]:
    body = json.dumps({"call_id": call_id, "transcript": text, "confidence": 0.95,
                       "caller_number": caller}, ensure_ascii=False).encode()
    response = httpx.post(server.url + "/ivr/turn", content=body, headers=signed_headers(IVR_SECRET, body),
                          timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def sessions(server: ServeProcess) -> Sessions:
    """One verified conversation per channel, each of which read a bill."""
    web, wechat, hotline = _victims()
    web_id, web_token = web_conversation(server.url)
    _web_say(server, web_id, web_token, f"户号{web.account_no}，手机号后四位{web.phone[-4:]}")
    assert any(a in _web_say(server, web_id, web_token, "查一下最近的电费")["text"] for a in web.amounts)

    assert wechat.openid is not None
    reply = _wechat_say(server, wechat.openid, "查一下最近的电费")
    if not any(a in reply for a in wechat.amounts):  # asked to confirm the bound account first
        reply = _wechat_say(server, wechat.openid, "是")
    assert any(a in reply for a in wechat.amounts) or "元" in reply, reply

    call = "call-attack-" + os.urandom(4).hex()
    asked = _ivr_say(server, call, "查一下最近的电费", hotline.phone)
    assert asked["awaiting"] == "check_answer", asked
    assert "元" in _ivr_say(server, call, hotline.street, hotline.phone)["speech"]
    return Sessions([web, wechat, hotline], web_id, web_token, f"wechat-{wechat.openid}", call)


NOT_FOUND = {"detail": "会话不存在"}


def test_web_routes_do_not_open_other_conversations(server: ServeProcess, sessions: Sessions) -> None:
    attacker = Attacker(server)
    _own_id, own_token = web_conversation(server.url)  # the attacker's own valid web conversation
    targets = [sessions.web_id, sessions.wechat_id, f"ivr-{sessions.ivr_call}",
               "alipay-2088000000000001", "web-" + "0" * 32]  # the last was never issued: everything must look like it
    for target in targets:
        for headers in ({}, own_token, {"X-Conversation-Token": sessions.web_token["X-Conversation-Token"] + "x"},
                        {"Cookie": f"powerdesk_conversation={own_token['X-Conversation-Token']}"}):
            read = attacker.request("GET", f"/api/chat/conversations/{target}", headers=headers)
            said = attacker.request("POST", f"/api/chat/conversations/{target}/messages?stream=false",
                                    json={"text": "查电费"}, headers=headers)
            rated = attacker.request("POST", f"/api/chat/conversations/{target}/csat", json={"score": 1},
                                     headers=headers)
            for response in (read, said, rated):
                assert response.status_code == 404 and response.json() == NOT_FOUND, (target, response.text)
    # The victim's own token opens only the victim's own conversation.
    assert attacker.request("GET", f"/api/chat/conversations/{sessions.web_id}",
                            headers=sessions.web_token).status_code == 200
    assert attacker.request("GET", f"/api/chat/conversations/{sessions.wechat_id}",
                            headers=sessions.web_token).status_code == 404
    attacker.seen.pop(-2)  # that one was the victim reading their own conversation
    _assert_no_leak(attacker, sessions.victims)


def test_hotline_refuses_unsigned_and_forged_platform_requests(server: ServeProcess, sessions: Sessions) -> None:
    attacker = Attacker(server)
    hotline = sessions.victims[2]
    payload = {"call_id": sessions.ivr_call, "transcript": "查一下最近的电费", "confidence": 0.95,
               "caller_number": hotline.phone}
    body = json.dumps(payload, ensure_ascii=False).encode()
    unsigned = attacker.request("POST", "/ivr/turn", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    forged = attacker.request("POST", "/ivr/turn", content=body, headers=signed_headers("guessed-secret", body))
    assert forged.status_code == 403
    stale = attacker.request("POST", "/ivr/turn", content=body,
                             headers=signed_headers(IVR_SECRET, body, now=time.time() - 3600))
    assert stale.status_code == 401  # even a real signature, outside the replay window
    # A recorded genuine request replayed byte for byte.
    genuine = signed_headers(IVR_SECRET, body)
    first = httpx.post(server.url + "/ivr/turn", content=body, headers=genuine, timeout=60)
    assert first.status_code == 200
    assert attacker.request("POST", "/ivr/turn", content=body, headers=genuine).status_code == 401
    # A signature over another body does not carry over to the attacker's body.
    other = json.dumps({**payload, "call_id": "call-attacker-0001"}).encode()
    assert attacker.request("POST", "/ivr/turn", content=other, headers=signed_headers(IVR_SECRET, body)
                            ).status_code == 403
    # The hotline cannot name another channel's conversation: ids are "ivr-" + call id.
    for call_id in (sessions.wechat_id, sessions.web_id):
        crossed = json.dumps({"call_id": call_id, "transcript": "查电费", "confidence": 0.95}).encode()
        response = httpx.post(server.url + "/ivr/turn", content=crossed,
                              headers=signed_headers(IVR_SECRET, crossed), timeout=60)
        assert response.status_code == 200
        attacker.seen.append(response.text)
        assert response.json()["awaiting"] in (None, "account_no", "last4", "check_answer"), response.text
    _assert_no_leak(attacker, sessions.victims)


def test_wechat_callbacks_must_be_signed_by_wechat(server: ServeProcess, sessions: Sessions) -> None:
    attacker = Attacker(server)
    wechat = sessions.victims[1]
    assert wechat.openid is not None
    for token in ("powerdesk", "", "wxtoken", "guess"):  # the old constant default among them
        url, body = plain_request(token, text_xml(wechat.openid, "查一下最近的电费", next(_msg_ids)),
                                  wechat.openid)
        assert attacker.request("POST", url, content=body).status_code == 403
    # Plain mode signs the query, not the body: a signed query seen once (say, in a log) must not
    # carry the attacker's body, nor may a signature from an hour ago.
    genuine_url, genuine_body = plain_request(WECHAT_TOKEN, text_xml("o_someone_else", "电费怎么交", next(_msg_ids)))
    assert httpx.post(server.url + genuine_url, content=genuine_body, timeout=60).status_code == 200
    forged = text_xml(wechat.openid, "查一下最近的电费", next(_msg_ids)).encode()
    assert attacker.request("POST", genuine_url, content=forged).status_code == 403
    old = int(time.time()) - 3600
    query = {"signature": signature(WECHAT_TOKEN, str(old), "oldnonce"), "timestamp": str(old), "nonce": "oldnonce"}
    assert attacker.request("POST", "/wechat?" + urlencode(query), content=forged).status_code == 403
    # WeChat's own retry of the first message (same query, same body) is still answered.
    assert httpx.post(server.url + genuine_url, content=genuine_body, timeout=60).status_code == 200
    _assert_no_leak(attacker, sessions.victims)


def test_alipay_callbacks_must_be_signed_by_alipay(server: ServeProcess, sessions: Sessions,
                                                   alipay_keys: Keys) -> None:
    attacker = Attacker(server)
    verify = "<XML><CreateTime>1</CreateTime><MsgType>event</MsgType><EventType>verifygw</EventType></XML>"
    genuine = httpx.post(server.url + "/alipay", content=gateway_form(alipay_keys, "alipay.service.check", verify),
                         headers=FORM, timeout=30)
    assert genuine.status_code == 200 and signed_answer(alipay_keys, genuine).findtext("success") == "true"
    stranger = make_keys(Path(tempfile.mkdtemp(prefix="powerdesk-attacker-")))
    notify = "alipay.mobile.public.message.notify"
    for user in ("2088000000000001", sessions.wechat_id.removeprefix("wechat-")):  # a guess, a known openid
        forged = gateway_form(alipay_keys, notify, message_xml(user, "查一下最近的电费"), signer=stranger.alipay)
        assert attacker.request("POST", "/alipay", content=forged, headers=FORM).status_code == 403
    _assert_no_leak(attacker, sessions.victims)


def test_staff_api_needs_a_staff_token(server: ServeProcess, sessions: Sessions) -> None:
    attacker = Attacker(server)
    for path in (f"/api/assist/conversations/{sessions.wechat_id}", f"/api/assist/conversations/{sessions.web_id}",
                 "/api/assist/queue", f"/api/assist/customers/{sessions.victims[0].account_no}/bills"):
        assert attacker.request("GET", path).status_code == 401
        assert attacker.request("GET", path, headers={"Authorization": "Bearer guess"}).status_code == 403
    _assert_no_leak(attacker, sessions.victims)


def _assert_no_leak(attacker: Attacker, victims: list[Victim]) -> None:
    assert attacker.seen
    for text in attacker.seen:
        for secret in (s for v in victims for s in v.secrets()):
            assert secret not in text, f"{secret!r} leaked in {text[:300]!r}"
