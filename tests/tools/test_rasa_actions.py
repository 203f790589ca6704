"""The Rasa action server as Rasa sees it: a real `powerdesk rasa-actions` process on a free port,
answering real webhook payloads (tracker with slots, latest_message and events; domain;
next_action; version), sent with the shared token as Rasa sends it (`?token=`, from
endpoints.yml `action_endpoint.token`). Without it, or with another, nothing runs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from billing_core.db.models import Bill, WorkOrder
from tests.servers.ports import free_port, wait_until
from sqlalchemy.orm import sessionmaker

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade as upgrade_billing
from tests.tools.conftest import ACCOUNT_A, ACCOUNT_B, World, build_world
from tools.migrate import upgrade as upgrade_tools
from tools.models import AuditEvent, VerifiedSession
from tools.rasa_actions import ACTIONS, TOKEN_ENV, action_token

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


@dataclass(frozen=True)
class ActionServer:
    base: str
    token: str
    token_file: Path
    stdout: str  # what the command printed at start

    def post(self, body: dict[str, Any]) -> httpx.Response:
        """A webhook call as Rasa makes it with `action_endpoint: {url, token}`."""
        return httpx.post(f"{self.base}/webhook", params={"token": self.token}, json=body, timeout=30)


@pytest.fixture(scope="module")
def server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActionServer]:
    """`powerdesk rasa-actions` with no token configured: it generates one into its var dir."""
    port = free_port()
    var_dir = tmp_path_factory.mktemp("rasa-var")
    env = dict(os.environ, POWERDESK_DATABASE_URL=str(world.sessions.kw["bind"].url.render_as_string(False)),
               POWERDESK_VAR_DIR=str(var_dir))
    env.pop("POWERDESK_RASA_ACTION_TOKEN", None)
    log = var_dir / "stdout.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(POWERDESK), "rasa-actions", "--port", str(port)], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200, 90,
                   "rasa action server")
        token_file = var_dir / "secrets" / "rasa_action_token"
        yield ActionServer(base, token_file.read_text().strip(), token_file, log.read_text())
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


def test_the_token_is_generated_into_the_var_dir_and_only_its_place_is_printed(server: ActionServer) -> None:
    assert len(server.token) >= 40  # 32 random bytes, URL-safe
    assert stat.S_IMODE(server.token_file.stat().st_mode) == 0o600
    assert str(server.token_file) in server.stdout and server.token not in server.stdout


def test_health_and_action_list(server: ActionServer) -> None:
    assert httpx.get(f"{server.base}/health").json() == {"status": "ok"}  # probes need no token
    listed = httpx.get(f"{server.base}/actions", headers={"Authorization": f"Bearer {server.token}"})
    assert {item["name"] for item in listed.json()} == set(ACTIONS)


def test_unknown_action_is_404(server: ActionServer) -> None:
    response = server.post(payload("action_drop_tables", "s-1", {}))
    assert response.status_code == 404 and response.json()["action_name"] == "action_drop_tables"


def test_without_the_token_nothing_runs_and_nothing_leaks(server: ActionServer, world: World) -> None:
    # A stranger who reaches /webhook claims customer A's WeChat openid.
    claim = payload("action_verify_identity", "wx-intruder", {}, channel="wechat", metadata={"openid": "openid-A"})
    lookup = payload("action_lookup_bill", "wx-intruder", {"period": "2026-05"}, channel="wechat",
                     metadata={"openid": "openid-A"})
    with world.sessions() as session:
        amount = str(session.get(Bill, world.bill_ids["A:2026-05"]).amount)
    hook = f"{server.base}/webhook"
    near_miss = server.token[:-1] + ("A" if server.token[-1] != "A" else "B")
    attempts = [
        (401, httpx.post(hook, json=claim)),
        (401, httpx.post(hook, json=lookup)),
        (401, httpx.post(hook, params={"token": ""}, json=claim)),
        (403, httpx.post(hook, params={"token": "powerdesk"}, json=claim)),
        (403, httpx.post(hook, params={"token": near_miss}, json=lookup)),
        (403, httpx.post(hook, headers={"Authorization": f"Bearer {near_miss}"}, json=claim)),
        (401, httpx.post(hook, json=payload("action_drop_tables", "wx-intruder", {}))),  # not a 404
        (401, httpx.get(f"{server.base}/actions")),
    ]
    for expected, response in attempts:
        assert response.status_code == expected, response.text
        assert set(response.json()) == {"error"}
        for secret in (ACCOUNT_A, amount, "openid-A", "陈", "action_", "wx-intruder"):
            assert secret not in response.text
    with world.sessions() as session:  # no tool ran for the intruder: no attempt, no audit row
        assert session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.conversation_id == "wx-intruder")) == 0
        assert session.scalar(select(func.count()).select_from(VerifiedSession)
                              .where(VerifiedSession.conversation_id == "wx-intruder")) == 0
    # The same call with the token is Rasa's: it runs.
    assert _slots(server.post(claim).json())["verified"] is True


def test_the_token_from_the_variable_wins_and_a_short_one_is_refused(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    first, path = action_token(tmp_path / "a")
    again, _ = action_token(tmp_path / "a")
    other, _ = action_token(tmp_path / "b")
    assert path == tmp_path / "a" / "secrets" / "rasa_action_token" and first == again != other  # random, kept
    monkeypatch.setenv(TOKEN_ENV, "x" * 24)
    assert action_token(tmp_path / "a") == ("x" * 24, None)
    monkeypatch.setenv(TOKEN_ENV, "short")
    with pytest.raises(ValueError, match=TOKEN_ENV):
        action_token(tmp_path / "a")
    refused = subprocess.run([str(POWERDESK), "rasa-actions", "--port", str(free_port())],
                             env=dict(os.environ, POWERDESK_RASA_ACTION_TOKEN="short"),
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and TOKEN_ENV in refused.stderr


def test_verify_then_lookup_keeps_the_principal_server_side(server: ActionServer, world: World) -> None:
    anonymous = server.post(payload("action_lookup_bill", "s-2", {"period": "2026-05"}))
    assert anonymous.status_code == 200
    assert _slots(anonymous.json())["tool_status"] == "needs_verification"
    # A forged slot (verified=true, account_no=B) grants nothing.
    forged_slots = {"verified": True, "account_no": ACCOUNT_B, "period": "2026-05"}
    forged = server.post(payload("action_lookup_bill", "s-2", forged_slots)).json()
    assert _slots(forged)["verified"] is False and _slots(forged)["tool_status"] == "needs_verification"

    verified = server.post(payload("action_verify_identity", "s-2",
                                             {"account_no": ACCOUNT_A, "last4": "8000"}, text="8000")).json()
    slots = _slots(verified)
    assert slots["verified"] is True and slots["tool_status"] == "verified"
    assert slots["last4"] is None  # the secret does not stay in the tracker
    assert verified["responses"][0]["custom"]["result"]["account_no"] == ACCOUNT_A

    # Next turn: the account_no slot now says B, but the server-side principal is A.
    lookup = server.post(payload("action_lookup_bill", "s-2",
                                           {"account_no": ACCOUNT_B, "period": "2026-05"}))
    body = lookup.json()
    result = body["responses"][0]["custom"]["result"]
    with world.sessions() as session:
        amount = session.get(Bill, world.bill_ids["A:2026-05"]).amount
    assert result["account_no"] == ACCOUNT_A and result["bills"][0]["amount"] == str(amount)
    assert str(amount) in body["responses"][0]["text"]
    # Another sender is not verified by s-2's verification.
    other = server.post(payload("action_lookup_bill", "s-3", {"period": "2026-05"})).json()
    assert _slots(other)["tool_status"] == "needs_verification"


def test_dispute_and_duplicate_through_the_webhook(server: ActionServer, world: World) -> None:
    server.post(payload("action_verify_identity", "s-4",
                                  {"account_no": ACCOUNT_A, "last4": "8000"}))
    slots = {"period": "2026-05", "dispute_category": "amount_too_high", "dispute_reason": "比上月多太多"}
    first = server.post(payload("action_open_dispute", "s-4", slots)).json()
    ticket = _slots(first)["ticket_no"]
    assert _slots(first)["tool_status"] == "opened" and ticket in first["responses"][0]["text"]
    second = server.post(payload("action_open_dispute", "s-4", slots)).json()
    assert _slots(second)["tool_status"] == "duplicate" and _slots(second)["ticket_no"] == ticket
    with world.sessions() as session:
        orders = session.scalars(select(WorkOrder).where(WorkOrder.channel == "rasa")).all()
    assert [(o.no, o.account_no, o.channel) for o in orders] == [(ticket, ACCOUNT_A, "rasa")]


def test_wechat_openid_from_metadata_and_handoff(server: ActionServer) -> None:
    body = server.post(payload("action_verify_identity", "wx-9", {}, channel="wechat",
                                         metadata={"openid": "openid-A"})).json()
    assert _slots(body)["verified"] is True
    handoff = server.post(payload("action_transfer_to_human", "wx-9", {}, text="我要人工",
                                            channel="wechat", metadata={"openid": "openid-A"})).json()
    assert _slots(handoff)["tool_status"] == "transferred" and _slots(handoff)["handoff_no"].startswith("HO")
