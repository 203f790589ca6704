"""Web chat API with the real agent: streamed replies, a verified bill lookup, reconnect, CSAT."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from agent.models import ConversationRecord
from billing_core.db.engine import session_scope
from channels.app import create_app
from tests.channels.conftest import DemoCustomer, make_settings, new_web_conversation, sse_events as _events


def _say(client: TestClient, cid: str, text: str, message_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if message_id:
        body["message_id"] = message_id
    response = client.post(f"/api/chat/conversations/{cid}/messages", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    deltas = "".join(data["text"] for kind, data in events if kind == "delta")
    kind, reply = events[-1]
    assert kind == "reply"
    assert deltas == reply["text"]  # the streamed pieces add up to the final reply
    return reply


def test_bill_lookup_after_verification(client: TestClient, demo_customer: DemoCustomer) -> None:
    cid = client.post("/api/chat/conversations").json()["conversation_id"]
    first = _say(client, cid, f"查一下{demo_customer.period_words}的电费")
    assert first["awaiting"] in ("account_no", "last4")
    assert demo_customer.amount_text not in first["text"]  # nothing before verification
    _say(client, cid, f"户号{demo_customer.account_no}，手机号后四位{demo_customer.last4}")
    reply = _say(client, cid, f"查一下{demo_customer.period_words}的电费")
    assert demo_customer.amount_text in reply["text"]

    transcript = client.get(f"/api/chat/conversations/{cid}").json()  # what a reconnecting page reads
    assert [t["user_text"] for t in transcript["turns"]][-1] == f"查一下{demo_customer.period_words}的电费"
    assert demo_customer.amount_text in transcript["turns"][-1]["reply_text"]

    rated = client.post(f"/api/chat/conversations/{cid}/csat", json={"score": 4})
    assert rated.status_code == 200 and rated.json()["label"] == "满意"
    with session_scope() as session:
        record = session.scalar(select(ConversationRecord).where(ConversationRecord.conversation_id == cid))
        assert record is not None and record.csat_score == 4 and record.channel == "web"


def test_resent_message_is_answered_once(client: TestClient) -> None:
    cid = client.post("/api/chat/conversations").json()["conversation_id"]
    first = _say(client, cid, "电费怎么交", message_id="m-0001")
    again = _say(client, cid, "电费怎么交", message_id="m-0001")
    assert again["text"] == first["text"]
    transcript = client.get(f"/api/chat/conversations/{cid}").json()
    assert transcript["turn_count"] == 1


def test_unknown_conversation_and_bad_input(client: TestClient) -> None:
    assert client.get("/api/chat/conversations/web-doesnotexist00").status_code == 404
    rated = client.post("/api/chat/conversations/web-doesnotexist00/csat", json={"score": 5})
    assert rated.status_code == 404
    # Without its token a conversation does not exist, whatever the body says.
    response = client.post("/api/chat/conversations/web-abcdefgh/messages", json={"text": ""})
    assert response.status_code == 404
    response = client.post("/api/chat/conversations/bad id!/messages", json={"text": "你好"})
    assert response.status_code in (404, 422)
    cid = new_web_conversation(client)
    response = client.post(f"/api/chat/conversations/{cid}/messages", json={"text": ""})
    assert response.status_code == 422 and "body.text" in response.json()["detail"]
    response = client.post(f"/api/chat/conversations/{cid}/csat", json={"score": 9})
    assert response.status_code == 422 and "body.score" in response.json()["detail"]


def test_rate_limit_per_sender(agent: Any) -> None:
    with TestClient(create_app(make_settings(rate_limit_per_minute=2), agent)) as limited:
        busy = new_web_conversation(limited)
        for _ in range(2):
            assert limited.post(f"/api/chat/conversations/{busy}/messages?stream=false",
                                json={"text": "你好"}).status_code == 200
        refused = limited.post(f"/api/chat/conversations/{busy}/messages?stream=false", json={"text": "你好"})
        assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
        # another sender is not affected
        other = new_web_conversation(limited)
        assert limited.post(f"/api/chat/conversations/{other}/messages?stream=false",
                            json={"text": "你好"}).status_code == 200
        metrics = limited.get("/metrics").text
        assert 'powerdesk_rate_limited_total{channel="web"} 1.0' in metrics
