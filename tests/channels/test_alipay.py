"""Alipay 生活号 gateway: RSA2-signed callbacks (test key pairs made here), signed answers, replies
through a local stand-in for the open API's `alipay.open.public.message.custom.send`.

The test signs and checks signatures with its own few lines (sorted `k=v` pairs without
sign/sign_type, SHA256withRSA), not with the module's helpers, so a wrong canonical form in
`channels.alipay` fails here.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import defusedxml.ElementTree as SafeET
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent.models import ConversationRecord
from billing_core.db.engine import session_scope
from channels.app import create_app
from tests.channels.conftest import STAFF_TOKEN, DemoCustomer, make_settings

APP_ID = "2021000000000001"
STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}
_ids = itertools.count(int(time.time() * 1000))


@dataclass(frozen=True)
class Keys:
    alipay: rsa.RSAPrivateKey  # Alipay's own key: signs the callbacks
    app: rsa.RSAPrivateKey  # our application key: signs our answers and open-API calls
    env: dict[str, str]


def _pem_private(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_b64(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("alipay-keys"))


def _canonical(fields: dict[str, str], exclude: tuple[str, ...]) -> str:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in exclude and fields[k])


def _sign(key: rsa.RSAPrivateKey, text: str, charset: str) -> str:
    return base64.b64encode(key.sign(text.encode(charset), padding.PKCS1v15(), hashes.SHA256())).decode()


def _verifies(key: rsa.RSAPrivateKey, text: str, signature: str, charset: str = "utf-8") -> bool:
    try:
        key.public_key().verify(base64.b64decode(signature), text.encode(charset), padding.PKCS1v15(),
                                hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def message_xml(user: str, text: str | None = None, event: str | None = None, key: str = "",
                msg_id: int | None = None) -> str:
    created = next(_ids)
    body = (f"<AppId><![CDATA[{APP_ID}]]></AppId><FromUserId><![CDATA[{user}]]></FromUserId>"
            f"<CreateTime>{created}</CreateTime>")
    if text is not None:
        body += f"<MsgType><![CDATA[text]]></MsgType><Text><Content><![CDATA[{text}]]></Content></Text>"
    else:
        body += (f"<MsgType><![CDATA[event]]></MsgType><EventType><![CDATA[{event}]]></EventType>"
                 f"<ActionParam><![CDATA[{key}]]></ActionParam>")
    body += f"<MsgId><![CDATA[{msg_id or created}]]></MsgId>"
    return f'<?xml version="1.0" encoding="gbk"?><XML>{body}</XML>'


def signed_fields(keys: Keys, fields: dict[str, str], charset: str = "UTF-8") -> bytes:
    """Any form fields signed as Alipay signs them (for generated requests: the contract test)."""
    fields = {**fields, "charset": charset}
    fields.pop("sign_type", None)
    fields["sign"] = _sign(keys.alipay, _canonical({k: v for k, v in fields.items() if k != "sign"}, ()), charset)
    fields["sign_type"] = "RSA2"
    return urlencode(fields, encoding=charset).encode("ascii")


def make_keys(directory: Path) -> Keys:
    alipay = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "app_private.pem").write_bytes(_pem_private(app))
    (directory / "alipay_public.txt").write_text(_public_b64(alipay))  # as the console shows it: bare base64
    return Keys(alipay, app, {"POWERDESK_ALIPAY_APP_ID": APP_ID,
                              "POWERDESK_ALIPAY_APP_PRIVATE_KEY_PATH": str(directory / "app_private.pem"),
                              "POWERDESK_ALIPAY_PUBLIC_KEY_PATH": str(directory / "alipay_public.txt")})


def gateway_form(keys: Keys, service: str, biz_content: str, charset: str = "GBK",
                 signer: rsa.RSAPrivateKey | None = None, **overrides: str) -> bytes:
    """The form Alipay POSTs, percent-escaped in `charset`, signed by Alipay's key."""
    fields = {"service": service, "charset": charset, "biz_content": biz_content, "app_id": APP_ID}
    fields["sign"] = _sign(signer or keys.alipay, _canonical(fields, ("sign", "sign_type")), charset)
    fields["sign_type"] = "RSA2"
    fields.update(overrides)
    return urlencode(fields, encoding=charset).encode("ascii")


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post(client: Any, body: bytes) -> Any:
    return client.post("/alipay", content=body, headers=FORM)


def signed_answer(keys: Keys, response: Any, charset: str = "gbk") -> Any:
    """The <response> element of a signed answer, after checking our app key signed its text."""
    text = response.content.decode(charset)
    inner = text[text.index("<response>") + len("<response>"):text.index("</response>")]
    root = SafeET.fromstring(text.split("?>", 1)[1])
    assert root.findtext("sign_type") == "RSA2"
    assert _verifies(keys.app, inner, root.findtext("sign") or "", charset), "answer not signed by the app key"
    return root.find("response")


@dataclass
class OpenApi:
    """A local stand-in for https://openapi.alipay.com/gateway.do (custom.send only)."""

    url: str
    sent: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def wait_for(self, user: str, count: int, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            texts = [m["text"]["content"] for m in self.sent if m["to_user_id"] == user]
            if len(texts) >= count:
                return texts
            time.sleep(0.05)
        raise AssertionError(f"no message {count} for {user}: sent {self.sent}, rejected {self.rejected}")


@pytest.fixture
def open_api(keys: Keys) -> Iterator[OpenApi]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"])).decode("ascii")
            fields = dict(parse_qsl(raw, keep_blank_values=True, encoding="utf-8"))
            ok = (fields.get("method") == "alipay.open.public.message.custom.send" and fields.get("app_id") == APP_ID
                  and fields.get("sign_type") == "RSA2"
                  and _verifies(keys.app, _canonical(fields, ("sign",)), fields.get("sign", "")))
            if ok:
                api.sent.append(json.loads(fields["biz_content"]))
                answer = {"code": "10000", "msg": "Success"}
            else:
                api.rejected.append(raw)
                answer = {"code": "40002", "msg": "Invalid Arguments", "sub_msg": "签名错误"}
            body = json.dumps({"alipay_open_public_message_custom_send_response": answer, "sign": "x"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api = OpenApi(url=f"http://127.0.0.1:{server.server_address[1]}/gateway.do")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture
def alipay(agent: Any, keys: Keys, open_api: OpenApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for name, value in {**keys.env, "POWERDESK_ALIPAY_GATEWAY": open_api.url}.items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(make_settings(), agent)) as client:
        yield client


def test_gateway_check_answers_our_public_key_signed(alipay: TestClient, keys: Keys) -> None:
    verify = ('<?xml version="1.0" encoding="gbk"?><XML><AppId><![CDATA[' + APP_ID + ']]></AppId>'
              "<FromUserId></FromUserId><CreateTime><![CDATA[1389171239298]]></CreateTime>"
              "<MsgType><![CDATA[event]]></MsgType><EventType><![CDATA[verifygw]]></EventType></XML>")
    response = post(alipay, gateway_form(keys, "alipay.service.check", verify))
    assert response.status_code == 200, response.text
    inner = signed_answer(keys, response)
    assert inner.findtext("success") == "true"
    assert inner.findtext("biz_content") == _public_b64(keys.app)


def test_without_keys_the_gateway_does_not_exist(agent: Any, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERDESK_ALIPAY_PUBLIC_KEY_PATH", raising=False)
    with TestClient(create_app(make_settings(), agent)) as client:
        response = post(client, gateway_form(keys, "alipay.service.check", "<XML/>"))
    assert response.status_code == 404 and "POWERDESK_ALIPAY_PUBLIC_KEY_PATH" in response.json()["detail"]


def test_forged_or_tampered_callbacks_are_403(alipay: TestClient, keys: Keys) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    xml = message_xml("2088000000000001", "查一下我的电费")
    assert post(alipay, gateway_form(keys, "alipay.mobile.public.message.notify", xml, signer=stranger)).status_code == 403
    genuine = dict(parse_qsl(gateway_form(keys, "alipay.mobile.public.message.notify", xml).decode(),
                             encoding="gbk"))
    tampered = {**genuine, "biz_content": genuine["biz_content"].replace("2088000000000001", "2088000000000002")}
    response = post(alipay, urlencode(tampered, encoding="gbk").encode())
    assert response.status_code == 403 and response.json()["detail"].startswith("sign:")
    garbage = post(alipay, urlencode({**genuine, "sign": "bm90IGEgc2lnbmF0dXJl"}, encoding="gbk").encode())
    assert garbage.status_code == 403
    other_app = message_xml("2088000000000001", "你好").replace(APP_ID, "2021999999999999")
    assert post(alipay, gateway_form(keys, "alipay.mobile.public.message.notify", other_app)).status_code == 403


@pytest.mark.parametrize(("body", "field_name"), [
    (lambda k: b"", "service"),
    (lambda k: gateway_form(k, "alipay.mobile.public.message.notify", "<XML/>", sign_type="RSA"), "sign_type"),
    (lambda k: gateway_form(k, "alipay.mobile.public.message.notify", "不是 XML"), "biz_content"),
    (lambda k: gateway_form(k, "alipay.mobile.public.message.notify",
                            '<!DOCTYPE x [<!ENTITY a "b">]><XML><MsgType>text</MsgType></XML>'), "biz_content"),
    (lambda k: gateway_form(k, "alipay.mobile.public.message.notify", "<XML><CreateTime>1</CreateTime></XML>"),
     "biz_content.MsgType"),
    (lambda k: gateway_form(k, "alipay.mobile.public.message.notify", message_xml("bad id!", "你好")),
     "biz_content.FromUserId"),
    (lambda k: gateway_form(k, "alipay.other.service", message_xml("2088000000000001", "你好")), "service"),
    (lambda k: gateway_form(k, "alipay.mobile.public.message.notify", "<XML/>", charset="latin-1"), "charset"),
    (lambda k: b"service=%FF%FE&sign=x", "body"),
])
def test_malformed_callbacks_are_400_naming_the_field(alipay: TestClient, keys: Keys, body: Any,
                                                      field_name: str) -> None:
    response = post(alipay, body(keys))
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(f"{field_name}:")


def test_an_unknown_user_is_verified_then_served_and_resends_are_answered_once(
        alipay: TestClient, keys: Keys, open_api: OpenApi, demo_customer: DemoCustomer) -> None:
    user = "2088" + str(next(_ids))[-12:]
    notify = "alipay.mobile.public.message.notify"

    follow = post(alipay, gateway_form(keys, notify, message_xml(user, event="follow")))
    assert signed_answer(keys, follow).findtext("XML/MsgType") == "ack"
    assert "户号" in open_api.wait_for(user, 1)[0]  # the welcome

    asked = message_xml(user, "查一下我的电费")
    ack = post(alipay, gateway_form(keys, notify, asked))
    assert ack.status_code == 200 and signed_answer(keys, ack).findtext("XML/ToUserId") == user
    assert post(alipay, gateway_form(keys, notify, asked)).status_code == 200  # Alipay resends it
    replies = open_api.wait_for(user, 2)
    assert "户号" in replies[1]  # an unknown Alipay user goes through the usual verification

    identity = message_xml(user, f"户号{demo_customer.account_no}，手机号后四位{demo_customer.last4}")
    post(alipay, gateway_form(keys, notify, identity, charset="UTF-8"))
    replies = open_api.wait_for(user, 3)
    post(alipay, gateway_form(keys, notify, message_xml(user, f"查{demo_customer.period_words}的电费")))
    replies = open_api.wait_for(user, 4)
    assert demo_customer.amount_text in replies[3]
    time.sleep(0.3)
    assert len(open_api.wait_for(user, 4)) == 4, "the resent message was answered twice"
    assert open_api.rejected == []
    with session_scope() as session:
        record = session.scalars(select(ConversationRecord).where(
            ConversationRecord.conversation_id == f"alipay-{user}")).one()
        assert (record.channel, record.account_no, record.turn_count) == ("alipay", demo_customer.account_no, 3)


def test_staff_take_over_holds_the_bot_and_pushes_staff_replies(alipay: TestClient, keys: Keys,
                                                                open_api: OpenApi) -> None:
    user = "2088" + str(next(_ids))[-12:]
    notify = "alipay.mobile.public.message.notify"
    post(alipay, gateway_form(keys, notify, message_xml(user, "电费怎么交")))
    open_api.wait_for(user, 1)
    cid = f"alipay-{user}"
    assert alipay.post(f"/api/assist/conversations/{cid}/takeover", json={}, headers=STAFF).status_code == 200
    post(alipay, gateway_form(keys, notify, message_xml(user, "我要找人工")))
    sent = alipay.post(f"/api/assist/conversations/{cid}/messages", json={"text": "您好，我是人工客服小李"},
                       headers=STAFF)
    assert sent.status_code == 200, sent.text
    assert open_api.wait_for(user, 2)[1] == "您好，我是人工客服小李"  # the bot said nothing in between
    turns = alipay.get(f"/api/assist/conversations/{cid}", headers=STAFF).json()["transcript"]["turns"]
    assert [t["user_text"] for t in turns[-2:]] == ["我要找人工", ""]
    assert alipay.post(f"/api/assist/conversations/{cid}/handback", headers=STAFF).status_code == 200
    post(alipay, gateway_form(keys, notify, message_xml(user, "电费怎么交")))
    assert open_api.wait_for(user, 3)[2]  # the bot answers again
