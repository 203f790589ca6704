"""Staff console API: staff tokens only; transcript, suggestions, bills, take-over and hand-back."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from billing_core.db.engine import session_scope
from billing_core.db.models import Bill, Customer
from tests.channels.conftest import STAFF_TOKEN, DemoCustomer
from tools.models import HandoffRequest, HandoffStatus

STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}


def _say(client: TestClient, cid: str, text: str) -> dict:  # type: ignore[type-arg]
    response = client.post(f"/api/chat/conversations/{cid}/messages?stream=false", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()


def test_customers_cannot_reach_the_console(client: TestClient) -> None:
    cid = client.post("/api/chat/conversations").json()["conversation_id"]
    for path in ("/api/assist/queue", f"/api/assist/conversations/{cid}", "/api/kpi?period=2026-08",
                 "/api/assist/customers/0300000001/bills"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": f"Bearer {cid}"}).status_code == 403
        assert client.get(path, headers={"X-API-Key": "guess"}).status_code == 403
    assert client.post(f"/api/assist/conversations/{cid}/takeover", json={}).status_code == 401
    assert client.get("/api/assist/queue", headers={"X-API-Key": STAFF_TOKEN}).status_code == 200


def test_take_over_reply_and_hand_back(client: TestClient, demo_customer: DemoCustomer) -> None:
    cid = client.post("/api/chat/conversations").json()["conversation_id"]
    _say(client, cid, f"户号{demo_customer.account_no}，手机号后四位{demo_customer.last4}")
    _say(client, cid, f"查一下{demo_customer.period_words}的电费")

    queue = client.get("/api/assist/queue", headers=STAFF).json()
    assert cid in [c["conversation_id"] for c in queue["conversations"]]
    detail = client.get(f"/api/assist/conversations/{cid}", headers=STAFF).json()
    assert detail["verified_account"] == demo_customer.account_no
    assert demo_customer.amount_text in detail["transcript"]["turns"][-1]["reply_text"]

    suggestions = client.get(f"/api/assist/conversations/{cid}/suggestions", headers=STAFF).json()
    assert 1 <= len(suggestions) <= 3 and all(s["text"] and s["why"] for s in suggestions)

    bills = client.get(f"/api/assist/customers/{demo_customer.account_no}/bills", headers=STAFF).json()
    with session_scope() as session:
        customer = session.scalar(select(Customer).where(Customer.account_no == demo_customer.account_no))
        expected = session.scalars(select(Bill).where(Bill.customer_id == customer.id)
                                   .order_by(Bill.period.desc()).limit(12)).all()
    shown = [(b["period"], b["amount"]) for b in bills["bills"]]
    assert shown == [(b.period, format(b.amount, "f")) for b in expected]
    assert demo_customer.account_no == bills["account_no"] and "*" in bills["name"]

    taken = client.post(f"/api/assist/conversations/{cid}/takeover", json={"note": "客户情绪激动"}, headers=STAFF)
    assert taken.status_code == 200 and taken.json()["held_by_staff"] is True
    held = _say(client, cid, "你们这个电费算错了吧")
    assert held["held_by_staff"] is True
    sent = client.post(f"/api/assist/conversations/{cid}/messages", json={"text": "您好，我是人工客服小李"},
                       headers=STAFF)
    assert sent.status_code == 200
    turns = client.get(f"/api/chat/conversations/{cid}").json()["turns"]
    assert turns[-2]["user_text"] == "你们这个电费算错了吧"  # the customer's words are kept
    assert turns[-1]["reply_text"] == "您好，我是人工客服小李"  # and the customer's page sees the reply
    with session_scope() as session:
        request = session.scalar(select(HandoffRequest).where(HandoffRequest.conversation_id == cid))
        assert request is not None and request.status == HandoffStatus.ACCEPTED

    back = client.post(f"/api/assist/conversations/{cid}/handback", headers=STAFF)
    assert back.status_code == 200 and back.json()["held_by_staff"] is False
    again = _say(client, cid, "电费怎么交")
    assert again["held_by_staff"] is False and again["text"]
    with session_scope() as session:
        request = session.scalar(select(HandoffRequest).where(HandoffRequest.conversation_id == cid))
        assert request is not None and request.status == HandoffStatus.CLOSED


def test_staff_cannot_reply_without_taking_over(client: TestClient) -> None:
    cid = client.post("/api/chat/conversations").json()["conversation_id"]
    _say(client, cid, "你好")
    response = client.post(f"/api/assist/conversations/{cid}/messages", json={"text": "在吗"}, headers=STAFF)
    assert response.status_code == 409


def test_kpi_dashboard_json_and_csv(client: TestClient) -> None:
    data = client.get("/api/kpi?period=2026-08", headers=STAFF).json()
    assert data["period"] == "2026-08" and len(data["billing"]) == 7
    assert set(data["service"]) == {"all", "web", "wechat", "ivr", "alipay"}  # alipay: registered by its module
    csv_response = client.get("/api/kpi.csv?period=2026-08", headers=STAFF)
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert "电费回收率" in csv_response.text
    assert client.get("/api/kpi?period=2026-8", headers=STAFF).status_code == 422
    for page in ("/static/kpi.html", "/static/console.html", "/static/chat.html"):
        assert client.get(page).status_code == 200
