"""Operations endpoints and bad input that must never reach the agent: health, metrics, OpenAPI,
body limits, WeChat signatures and hostile XML."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from channels.app import create_app
from tests.channels.conftest import ivr_post, make_settings, new_web_conversation
from tests.channels.wechat_messages import plain_request, signature, text_xml


class _NoAgent:
    """Bad input must be refused before any turn runs: calling this fails the test."""

    def handle(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("the agent was called for a request that should have been refused")


@pytest.fixture
def guarded(seeded_database: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(max_body_bytes=4096), _NoAgent())) as client:
        yield client


def test_healthz_checks_the_database(guarded: TestClient) -> None:
    response = guarded.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["loading"]) == ("ok", "ok", None)


def test_metrics_are_prometheus_text(guarded: TestClient) -> None:
    guarded.get("/healthz")
    response = guarded.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'powerdesk_http_requests_total{method="GET",route="/healthz",status="200"}' in response.text


def test_openapi_lists_every_channel(guarded: TestClient) -> None:
    paths = guarded.get("/openapi.json").json()["paths"]
    for path in ("/healthz", "/metrics", "/api/chat/conversations/{conversation_id}/messages", "/wechat",
                 "/ivr/turn"):
        assert path in paths
    page = guarded.get("/docs")
    assert page.status_code == 200 and "cdn." not in page.text  # docs work offline
    assert guarded.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_oversized_body_is_413(guarded: TestClient) -> None:
    url, _ = plain_request("wxtoken", "")
    body = text_xml("o_user", "查电费" * 2000, 1)
    response = guarded.post(url, content=body.encode())
    assert response.status_code == 413
    assert response.json()["field"] == "body"


def test_chunked_oversized_body_is_413(guarded: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    response = guarded.post("/ivr/turn", content=chunks())
    assert response.status_code == 413


def test_bad_field_is_named(guarded: TestClient) -> None:
    response = ivr_post(guarded, {"call_id": "call-1", "transcript": "查电费", "confidence": 1.7})
    assert response.status_code == 422
    assert "body.confidence" in response.json()["detail"]


def test_wechat_get_verification_echoes_echostr(guarded: TestClient) -> None:
    timestamp, nonce = str(int(time.time())), "abc"
    query = {"signature": signature("wxtoken", timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
             "echostr": "echo-6392"}
    response = guarded.get("/wechat?" + urlencode(query))
    assert response.status_code == 200 and response.text == "echo-6392"
    query["signature"] = signature("other-token", timestamp, nonce)
    assert guarded.get("/wechat?" + urlencode(query)).status_code == 403


def test_wechat_wrong_signature_is_403(guarded: TestClient) -> None:
    url, body = plain_request("not-the-token", text_xml("o_user", "查电费", 2))
    response = guarded.post(url, content=body)
    assert response.status_code == 403
    assert "signature" in response.json()["detail"]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>3</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>4</MsgId></xml>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, "<xml><Content>unclosed", "not xml at all",
                                  "<html><body>hi</body></html>", "<xml><MsgType>text</MsgType></xml>"])
def test_hostile_or_malformed_xml_is_400(guarded: TestClient, body: str) -> None:
    url, _ = plain_request("wxtoken", "")
    response = guarded.post(url, content=body.encode())
    assert response.status_code == 400, response.text
    assert "root:x:" not in response.text and "lollol" not in response.text



def test_busy_conversation_asks_for_a_retry(agent: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another turn (or a killed process, until its lock expires) holds the conversation."""
    from agent import state as agent_state

    monkeypatch.setattr(agent_state, "LOCK_WAIT_SECONDS", 0.2)
    store = agent.store  # type: ignore[attr-defined]
    with TestClient(create_app(make_settings(), agent)) as client:
        cid = new_web_conversation(client)
        with store.lock(cid):
            response = client.post(f"/api/chat/conversations/{cid}/messages", json={"text": "你好"})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
