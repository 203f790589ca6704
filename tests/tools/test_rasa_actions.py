"""The Rasa action server as Rasa sees it: a real `powerdesk rasa-actions` process on a free port,
answering real webhook payloads (tracker with slots, latest_message and events; domain;
next_action; version)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from billing_core.db.models import Bill, WorkOrder
from tests.servers.ports import free_port, wait_until
from sqlalchemy.orm import sessionmaker

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade as upgrade_billing
from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World, build_world
from tools.migrate import upgrade as upgrade_tools
from tools.rasa_actions import ACTIONS

DOMAIN_FILE = Path(__file__).resolve().parents[2] / "tools" / "rasa_domain.yml"
DOMAIN = yaml.safe_load(DOMAIN_FILE.read_text("utf-8"))
POWERDESK = Path(sys.executable).with_name("powerdesk")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One database for the module's server (the HTTP face; the tools' database behaviour is
    tested on SQLite and PostgreSQL elsewhere). Tests use distinct sender ids."""
    url = f"sqlite:///{tmp_path_factory.mktemp('rasa') / 'powerdesk.db'}"
    upgrade_billing(url)
    upgrade_tools(url)
    engine = make_engine(url)
    yield build_world(sessionmaker(bind=engine, expire_on_commit=False))
    engine.dispose()


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, POWERDESK_DATABASE_URL=str(world.sessions.kw["bind"].url.render_as_string(False)))
    process = subprocess.Popen([str(POWERDESK), "rasa-actions", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200, 90,
                   "rasa action server")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def payload(action: str, sender: str, slots: dict[str, Any], text: str = "", channel: str = "rest",
            metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A webhook call as Rasa 3 sends it."""
    all_slots = {name: None for name in DOMAIN["slots"]} | slots
    latest = {"intent": {"name": "ask", "confidence": 0.98}, "entities": [], "text": text,
              "message_id": "m-1", "metadata": metadata or {}}
    now = time.time()
    return {
        "next_action": action,
        "sender_id": sender,
        "version": "3.12.0",
        "domain": DOMAIN,
        "tracker": {
            "sender_id": sender,
            "slots": all_slots,
            "latest_message": latest,
            "latest_event_time": now,
            "followup_action": None,
            "paused": False,
            "stream": None,
            "events": [
                {"event": "action", "timestamp": now - 2, "name": "action_session_start"},
                {"event": "session_started", "timestamp": now - 2},
                {"event": "action", "timestamp": now - 2, "name": "action_listen"},
                {"event": "user", "timestamp": now - 1, "text": text, "parse_data": latest,
                 "input_channel": channel, "metadata": metadata or {}},
            ],
            "latest_input_channel": channel,
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
    }


def _slots(body: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in body["events"] if e["event"] == "slot"}


def test_health_and_action_list(server: str) -> None:
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    names = {item["name"] for item in httpx.get(f"{server}/actions").json()}
    assert names == set(ACTIONS)


def test_unknown_action_is_404(server: str) -> None:
    response = httpx.post(f"{server}/webhook", json=payload("action_drop_tables", "s-1", {}))
    assert response.status_code == 404 and response.json()["action_name"] == "action_drop_tables"


def test_verify_then_lookup_keeps_the_principal_server_side(server: str, world: World) -> None:
    hook = f"{server}/webhook"
    anonymous = httpx.post(hook, json=payload("action_lookup_bill", "s-2", {"period": "2026-05"}))
    assert anonymous.status_code == 200
    assert _slots(anonymous.json())["tool_status"] == "needs_verification"
    # A forged slot (verified=true, account_no=B) grants nothing.
    forged_slots = {"verified": True, "account_no": ACCOUNT_B, "period": "2026-05"}
    forged = httpx.post(hook, json=payload("action_lookup_bill", "s-2", forged_slots)).json()
    assert _slots(forged)["verified"] is False and _slots(forged)["tool_status"] == "needs_verification"

    verified = httpx.post(hook, json=payload("action_verify_identity", "s-2",
                                             {"account_no": ACCOUNT_A, "last4": "8000"}, text="8000")).json()
    slots = _slots(verified)
    assert slots["verified"] is True and slots["tool_status"] == "verified"
    assert slots["last4"] is None  # the secret does not stay in the tracker
    assert verified["responses"][0]["custom"]["result"]["account_no"] == ACCOUNT_A

    # Next turn: the account_no slot now says B, but the server-side principal is A.
    lookup = httpx.post(hook, json=payload("action_lookup_bill", "s-2",
                                           {"account_no": ACCOUNT_B, "period": "2026-05"}))
    body = lookup.json()
    result = body["responses"][0]["custom"]["result"]
    with world.sessions() as session:
        amount = session.get(Bill, world.bill_ids["A:2026-05"]).amount
    assert result["account_no"] == ACCOUNT_A and result["bills"][0]["amount"] == str(amount)
    assert str(amount) in body["responses"][0]["text"]
    # Another sender is not verified by s-2's verification.
    other = httpx.post(hook, json=payload("action_lookup_bill", "s-3", {"period": "2026-05"})).json()
    assert _slots(other)["tool_status"] == "needs_verification"


def test_dispute_and_duplicate_through_the_webhook(server: str, world: World) -> None:
    hook = f"{server}/webhook"
    httpx.post(hook, json=payload("action_verify_identity", "s-4",
                                  {"account_no": ACCOUNT_A, "last4": "8000"}))
    slots = {"period": "2026-05", "dispute_category": "amount_too_high", "dispute_reason": "比上月多太多"}
    first = httpx.post(hook, json=payload("action_open_dispute", "s-4", slots)).json()
    ticket = _slots(first)["ticket_no"]
    assert _slots(first)["tool_status"] == "opened" and ticket in first["responses"][0]["text"]
    second = httpx.post(hook, json=payload("action_open_dispute", "s-4", slots)).json()
    assert _slots(second)["tool_status"] == "duplicate" and _slots(second)["ticket_no"] == ticket
    with world.sessions() as session:
        orders = session.scalars(select(WorkOrder).where(WorkOrder.channel == "rasa")).all()
    assert [(o.no, o.account_no, o.channel) for o in orders] == [(ticket, ACCOUNT_A, "rasa")]


def test_wechat_openid_from_metadata_and_handoff(server: str) -> None:
    hook = f"{server}/webhook"
    body = httpx.post(hook, json=payload("action_verify_identity", "wx-9", {}, channel="wechat",
                                         metadata={"openid": "openid-A"})).json()
    assert _slots(body)["verified"] is True
    handoff = httpx.post(hook, json=payload("action_transfer_to_human", "wx-9", {}, text="我要人工",
                                            channel="wechat", metadata={"openid": "openid-A"})).json()
    assert _slots(handoff)["tool_status"] == "transferred" and _slots(handoff)["handoff_no"].startswith("HO")
