"""Hotline turns with the real agent: confirmation on low confidence, spoken amounts, handoff."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import session_scope
from channels.spoken import amount_to_spoken
from tests.channels.conftest import DemoCustomer, ivr_post

_calls = itertools.count(1)


def _call_id() -> str:
    return f"call-{next(_calls):04d}-ivrtest"


def _turn(client: TestClient, call_id: str, transcript: str, confidence: float = 0.95,
          **extra: Any) -> dict[str, Any]:
    response = ivr_post(client, {"call_id": call_id, "transcript": transcript, "confidence": confidence,
                                 **extra})
    assert response.status_code == 200, response.text
    out = response.json()
    spoken = out["speech"]
    assert not any(ch.isdigit() for ch in spoken), spoken  # numbers are spelled for TTS
    assert not any(mark in spoken for mark in ("*", "#", "[", "`"))
    return out


def _turns(call_id: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count(TurnRecord.id)).join(ConversationRecord)
                              .where(ConversationRecord.conversation_id == f"ivr-{call_id}")) or 0


def test_low_confidence_is_confirmed_before_acting(client: TestClient) -> None:
    call = _call_id()
    out = _turn(client, call, "电费怎么交", confidence=0.3)
    assert out["action"] == "confirm" and "电费怎么交" in out["speech"] and out["speech"].endswith("。")
    assert _turns(call) == 0  # nothing acted on yet
    out = _turn(client, call, "是的")
    assert out["action"] == "continue" and _turns(call) == 1


def test_nbest_alternative_with_higher_confidence_wins(client: TestClient) -> None:
    call = _call_id()
    out = _turn(client, call, "电飞怎么胶", confidence=0.4,
                nbest=[{"text": "电费怎么交", "confidence": 0.92}])
    assert out["action"] == "continue" and _turns(call) == 1


def test_bill_amount_is_spoken_in_chinese(client: TestClient, demo_customer: DemoCustomer) -> None:
    call = _call_id()
    _turn(client, call, f"户号{demo_customer.account_no}，手机号后四位{demo_customer.last4}")
    out = _turn(client, call, f"查一下{demo_customer.period_words}的电费")
    assert amount_to_spoken(demo_customer.amount) in out["speech"]
    assert all(len(s) <= 41 for s in out["sentences"])


def test_repeated_failures_hand_off(client: TestClient) -> None:
    call = _call_id()
    assert _turn(client, call, "", confidence=0.0)["action"] == "continue"
    out = _turn(client, call, "", confidence=0.0)
    assert out["action"] == "handoff" and out["handoff"] is True


def test_two_rejected_confirmations_hand_off(client: TestClient) -> None:
    call = _call_id()
    _turn(client, call, "电费怎么交", confidence=0.2)
    assert _turn(client, call, "不是")["action"] == "continue"
    _turn(client, call, "电费怎么交", confidence=0.2)
    assert _turn(client, call, "不是")["action"] == "handoff"


def test_caller_asks_for_a_person(client: TestClient) -> None:
    from tools.models import HandoffRequest

    call = _call_id()
    out = _turn(client, call, "我要转人工")
    assert out["action"] == "handoff"
    with session_scope() as session:
        assert session.scalar(select(HandoffRequest).where(HandoffRequest.conversation_id == f"ivr-{call}"))
