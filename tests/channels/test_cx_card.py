"""The staff card shows the customer's classes, tags (with their records) and portrait, and staff set
a 重要客户 level through the API: a staff token is required, the change is audited, and nothing on
the card shows the customer's phone or ID."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from agent.experience.models import CustomerClassAssignment, CustomerProfile, PortraitRun
from agent.experience.portraits import refresh_portraits
from agent.experience.tags import refresh_tags
from billing_core.db.engine import session_scope
from billing_core.db.models import Customer, WorkOrder, WorkOrderKind, WorkOrderStatus
from tests.channels.conftest import STAFF_TOKEN
from tools.models import AuditEvent

STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}
AS_OF = datetime(2026, 10, 20, 4, 0, tzinfo=UTC)  # after the demo's 2026-09 bills


@pytest.fixture
def profiled(seeded_database: str) -> Iterator[Customer]:
    """Tags and portraits of the demo customers; removed afterwards (the database is shared)."""
    with session_scope() as session:
        refresh_tags(session, AS_OF)
        refresh_portraits(session, AS_OF)
        customer = session.scalars(select(Customer).where(Customer.category == "ci_two_part")
                                   .order_by(Customer.account_no.desc())).first()
        session.expunge(customer)
    yield customer
    with session_scope() as session:
        for table in (CustomerProfile, PortraitRun, CustomerClassAssignment):
            session.execute(delete(table))
        session.execute(delete(WorkOrder).where(WorkOrder.no == "WO202610200001"))


def test_the_card_shows_classes_tags_with_records_and_portrait(client: TestClient, profiled: Customer) -> None:
    account = profiled.account_no
    card = client.get(f"/api/assist/customers/{account}/card", headers=STAFF).json()
    cx = card["experience"]
    assert card["tags"] == [t["label"] for t in cx["tags"]] and any("月均用电" in t for t in card["tags"])
    usage = next(t for t in cx["tags"] if t["code"] == "monthly_kwh")
    assert usage["dimension"] == "用电行为" and usage["evidence"][0]["kind"] == "bill"
    assert len(usage["evidence"][0]["ids"]) == 12
    assert card["portrait"] and cx["portrait"]["label"] == card["portrait"]
    assert profiled.phone and profiled.phone not in str(card) and profiled.phone[-4:] not in str(cx)
    assert not {"phone", "id_last4", "name"} & set(cx)


def test_staff_set_a_class_with_a_token_and_it_is_audited(client: TestClient, profiled: Customer) -> None:
    account = profiled.account_no
    body = {"class_code": "vip_1", "reason": "市急救中心，中断供电危及生命"}
    assert client.put(f"/api/assist/customers/{account}/class", json=body).status_code == 401
    assert client.put(f"/api/assist/customers/{account}/class", json=body,
                      headers={"Authorization": "Bearer wrong"}).status_code == 403
    bad = client.put(f"/api/assist/customers/{account}/class", json={**body, "class_code": "large_ci"}, headers=STAFF)
    assert bad.status_code == 422 and "class_code" in bad.text  # a derived class is never set by hand
    done = client.put(f"/api/assist/customers/{account}/class", json=body, headers=STAFF)
    assert done.status_code == 200, done.text
    assert done.json()["classes"][0]["name"] == "一级重要客户"
    with session_scope() as session:  # a complaint the class routed to its queue (tools/intake_complaint.py)
        session.add(WorkOrder(no="WO202610200001", kind=WorkOrderKind.COMPLAINT, account_no=account,
                              status=WorkOrderStatus.OPEN, title="投诉：办事拖延", channel="web",
                              payload={"queue": "客户经理·重要客户专席（一级）"}))
    card = client.get(f"/api/assist/customers/{account}/card", headers=STAFF).json()
    assert card["classes"][0] == "一级重要客户"
    assert [t["queue"] for t in card["open_tickets"] if t["no"] == "WO202610200001"] == ["客户经理·重要客户专席（一级）"]
    assert card["experience"]["staff_class"]["reason"] == body["reason"]
    with session_scope() as session:
        audit = session.scalars(select(AuditEvent).where(AuditEvent.tool == "cx_set_class",
                                                         AuditEvent.account_no == account)).one()
        assert audit.channel == "staff_console" and audit.conversation_id.startswith("staff:")
    cleared = client.request("DELETE", f"/api/assist/customers/{account}/class",
                             json={"reason": "急救中心已迁址"}, headers=STAFF)
    assert cleared.status_code == 200 and "一级重要客户" not in [c["name"] for c in cleared.json()["classes"]]
    assert client.put("/api/assist/customers/440100999999/class", json=body, headers=STAFF).status_code == 404
