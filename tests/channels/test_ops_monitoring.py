"""The service's own health: the chat-path probe and 故障率, alerts from the policy file, /healthz
while starting, /metrics with the probe and alerts, the favicon, pending FCR, trends and the
customer card of the staff console."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from agent.models import ConversationRecord, Outcome
from agent.records import Recorder
from billing_core.db.engine import session_factory, session_scope
from billing_core.db.models import Bill, Customer, WorkOrder
from channels.alerts import evaluate_alerts, sync_alerts
from channels.app import create_app
from channels.kpi import kpi_report, latest_period_with_data, platform_figures
from channels.kpi_cli import app as kpi_app
from channels.models import AvailabilityInterval, OpsAlert
from channels.ops_policy import PolicyError, load_policy, parse_policy
from channels.probe import CheckResult, availability, check_chat, forget_probe_conversation, record_check
from tests.channels.conftest import STAFF_TOKEN, make_settings

STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}
TARGET = "http://probe-test.invalid"
GAP = timedelta(minutes=4)


def _result(ok: bool, at: datetime) -> CheckResult:
    return CheckResult(ok=ok, latency_ms=20, error=None if ok else "HTTP 500", conversation_id=None, checked_at=at)


def test_probe_checks_the_chat_path_end_to_end_and_leaves_no_customer_record(client: TestClient) -> None:
    with session_scope() as session:
        before = session.scalar(select(func.count(ConversationRecord.id)))
    result = check_chat("http://testserver", client=client)
    assert result.ok, result.error
    assert result.conversation_id and result.conversation_id.startswith("web-")
    with session_scope() as session:
        assert session.scalar(select(func.count(ConversationRecord.id))) == before + 1  # the turn was real
        forget_probe_conversation(session, result.conversation_id)
    with session_scope() as session:
        assert session.scalar(select(func.count(ConversationRecord.id))) == before


def test_probe_of_a_dead_service_is_a_fault_with_the_reason() -> None:
    from tests.servers.ports import free_port

    result = check_chat(f"http://127.0.0.1:{free_port()}", timeout=2)
    assert not result.ok and result.error and "ConnectError" in result.error


def test_intervals_extend_split_and_leave_unprobed_gaps_out(seeded_database: str) -> None:
    t0 = datetime(2024, 1, 10, 0, 0, tzinfo=UTC)
    with session_scope() as session:
        session.execute(delete(AvailabilityInterval).where(AvailabilityInterval.target == TARGET))
        first = record_check(session, TARGET, _result(True, t0), GAP)
        same = record_check(session, TARGET, _result(True, t0 + timedelta(minutes=1)), GAP)
        assert same.id == first.id and same.checks == 2
        down = record_check(session, TARGET, _result(False, t0 + timedelta(minutes=2)), GAP)
        assert down.id != first.id and down.started_at == t0 + timedelta(minutes=1)  # contiguous
        record_check(session, TARGET, _result(False, t0 + timedelta(minutes=3)), GAP)
        up = record_check(session, TARGET, _result(True, t0 + timedelta(minutes=4)), GAP)
        assert up.started_at == t0 + timedelta(minutes=3)
        # The probe was stopped for an hour: that hour is neither service nor fault time.
        late = record_check(session, TARGET, _result(True, t0 + timedelta(minutes=64)), GAP)
        assert late.started_at == t0 + timedelta(minutes=64)
        record_check(session, TARGET, _result(True, t0 + timedelta(minutes=67)), GAP)
        seen = availability(session, t0, t0 + timedelta(days=1), TARGET)
        # up 0–1, down 1–3, up 3–4 (the change at 4 counts as up), up 64–67: 7 min probed, 2 down
        assert (seen.service_seconds, seen.fault_seconds) == (420.0, 120.0)
        clipped = availability(session, t0 + timedelta(minutes=2), t0 + timedelta(minutes=66), TARGET)
        assert (clipped.service_seconds, clipped.fault_seconds) == (240.0, 60.0)
        [figure] = platform_figures(session, "2024-01", now=t0 + timedelta(days=40))
        assert (figure.numerator, figure.denominator) == (Decimal(120), Decimal(420))
        assert figure.value == Decimal("28.5714") and figure.name == "智能服务平台/系统故障率"
        [nothing] = platform_figures(session, "2023-12")
        assert nothing.value is None and nothing.shown() == "无数据"


def test_kpi_report_cli_shows_the_fault_rate(seeded_database: str) -> None:
    result = CliRunner().invoke(kpi_app, ["report", "--period", "2024-01"])
    assert result.exit_code == 0, result.output
    assert "平台运营" in result.output and "智能服务平台/系统故障率" in result.output


def test_fcr_inside_the_repeat_contact_window_is_pending_not_zero(seeded_database: str) -> None:
    recorder = Recorder(session_factory())
    started = datetime(2024, 2, 26, 2, 0, tzinfo=UTC)
    record_id = recorder.start("fcr-pending-1", "web", "local", "P00000000001", started_at=started)
    recorder.record_turn(record_id, user_text="查电费", reply_text="好的", brain="local", intents=["lookup_bill"],
                         tool_calls=[], citations=[], latency_ms=5, account_no="P00000000001",
                         topic="lookup_bill", outcome=Outcome.RESOLVED)
    recorder.finish(record_id, Outcome.RESOLVED)
    with session_scope() as session:
        inside = {f.code: f for f in kpi_report(session, "2024-02", now=started + timedelta(days=2)).service["web"]}
        after = {f.code: f for f in kpi_report(session, "2024-02", now=started + timedelta(days=8)).service["web"]}
    fcr = inside["first_contact_resolution"]
    assert fcr.value is None and fcr.pending == 1 and fcr.shown() == "待定"
    assert after["first_contact_resolution"].value == Decimal("100.00") and after["first_contact_resolution"].pending == 0


def test_policy_errors_name_the_field() -> None:
    policy = load_policy()
    assert {"first_contact_resolution", "platform_fault_rate"} <= set(policy.targets)
    for data, field in [
        ({"targets": {"fcr": {"target": 80, "better": "higher"}}}, "targets.fcr"),
        ({"targets": {"satisfaction": {"target": 80, "better": "up"}}}, "targets.satisfaction.better"),
        ({"alerts": [{"rule": "x", "kind": "turn_latency_p95", "message": "m"}]}, "alerts[0].above"),
        ({"alerts": [{"rule": "x", "kind": "kpi", "kpi": "satisfaction", "message": "m"}]}, "alerts[0].kpi"),
        ({"alerts": [{"rule": "x", "kind": "probe_stale", "message": "m", "minutes": 0}]}, "alerts[0].minutes"),
    ]:
        with pytest.raises(PolicyError, match=field.replace("[", r"\[").replace("]", r"\]")):
            parse_policy(data)


def test_alerts_open_while_breached_and_resolve_after(seeded_database: str, client: TestClient) -> None:
    policy = parse_policy({
        "targets": {"first_contact_resolution": {"target": 80, "better": "higher"}},
        "alerts": [
            {"rule": "fcr_low", "kind": "kpi", "kpi": "first_contact_resolution", "channel": "wechat",
             "min_denominator": 2, "severity": "warning", "message": "一次性问题解决率低于目标"},
            {"rule": "chat_down", "kind": "chat_error_rate", "window_minutes": 15, "above": 5,
             "severity": "critical", "message": "网页客服探测失败"},
        ],
    })
    recorder = Recorder(session_factory())
    base = datetime(2024, 3, 5, 2, 0, tzinfo=UTC)
    for index, outcome in enumerate([Outcome.TRANSFERRED, Outcome.TRANSFERRED, Outcome.RESOLVED]):
        account = f"A0000000000{index}"
        rid = recorder.start(f"alert-fcr-{index}", "wechat", "local", account, started_at=base)
        recorder.record_turn(rid, user_text="查电费", reply_text="好的", brain="local", intents=[], tool_calls=[],
                             citations=[], latency_ms=5, account_no=account, topic="lookup_bill", outcome=outcome)
        recorder.finish(rid, outcome)
    now = datetime(2024, 3, 20, 2, 0, tzinfo=UTC)
    with session_scope() as session:
        session.execute(delete(AvailabilityInterval).where(AvailabilityInterval.target == TARGET))
        for minutes in (14, 12, 10):
            record_check(session, TARGET, _result(True, now - timedelta(minutes=minutes)), GAP)
        for minutes in (8, 4, 0):
            record_check(session, TARGET, _result(False, now - timedelta(minutes=minutes)), GAP)
        breaches = evaluate_alerts(session, policy, now=now)
        # FCR 1 of 3 wechat needs; the chat path down from -10 to 0 of 14 probed minutes
        assert {b.rule.rule: b.value for b in breaches} == {"fcr_low": "33.33%", "chat_down": "71.43%"}
        opened = sync_alerts(session, breaches, policy, now=now)
        assert [a.rule for a in opened] == ["chat_down", "fcr_low"]  # critical first
    listed = client.get("/api/assist/alerts", headers=STAFF).json()
    assert {a["rule"] for a in listed} >= {"fcr_low", "chat_down"}
    assert client.get("/api/assist/alerts").status_code == 401
    with session_scope() as session:
        record_check(session, TARGET, _result(True, now + timedelta(minutes=30)), timedelta(hours=1))
        still = evaluate_alerts(session, policy, now=now + timedelta(minutes=30))
        assert [b.rule.rule for b in still] == ["fcr_low"]
        assert [a.rule for a in sync_alerts(session, still, policy, now=now + timedelta(minutes=30))] == ["fcr_low"]
        assert sync_alerts(session, [], policy, now=now + timedelta(minutes=31)) == []
        assert session.scalar(select(func.count(OpsAlert.id)).where(OpsAlert.resolved_at.is_(None))) == 0
        resolved = session.scalar(select(OpsAlert).where(OpsAlert.rule == "chat_down"))
        assert resolved is not None and resolved.resolved_at is not None


def test_metrics_export_the_probe_and_the_alert_rules(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert f'powerdesk_probe_up{{target="{TARGET}"}}' in text
    for rule in load_policy().alerts:
        assert f'powerdesk_alert_open{{rule="{rule.rule}",severity="{rule.severity}"}}' in text


def test_healthz_says_starting_until_ready_and_turns_wait(agent: Any) -> None:
    with TestClient(create_app(make_settings(), agent)) as starting:
        readiness = starting.app.state.readiness  # type: ignore[attr-defined]
        readiness.begin()
        response = starting.get("/healthz")
        assert response.status_code == 503 and response.json()["status"] == "starting"
        assert response.headers["retry-after"] == "5"
        created = starting.post("/api/chat/conversations")
        assert created.status_code == 201  # cheap, no model needed
        cid = created.json()["conversation_id"]
        turn = starting.post(f"/api/chat/conversations/{cid}/messages?stream=false", json={"text": "你好"})
        assert turn.status_code == 503 and turn.json()["status"] == "starting"
        readiness.status = "ready"
        assert starting.get("/healthz").json()["status"] == "ok"
        assert starting.post(f"/api/chat/conversations/{cid}/messages?stream=false",
                             json={"text": "你好"}).status_code == 200


def test_warm_up_logs_each_step_with_its_timing(agent: Any, caplog: pytest.LogCaptureFixture) -> None:
    from channels.startup import warm_up

    application = create_app(make_settings(), agent)
    with caplog.at_level("INFO", logger="powerdesk.channels"):
        warm_up(application)
    steps = application.state.readiness.snapshot()["steps"]
    assert [s["step"] for s in steps] == ["agent", "intent classifier", "article sections", "knowledge base"]
    assert "articles=" in str(steps[-1]["detail"]) and all(float(s["seconds"]) >= 0 for s in steps)
    assert application.state.readiness.status == "ready"
    assert any(r.getMessage().startswith("loaded knowledge base in") for r in caplog.records)


def test_favicon_is_a_real_icon(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00" and len(response.content) > 1000


def test_trend_opens_on_the_latest_period_with_data_and_carries_targets(client: TestClient) -> None:
    with session_scope() as session:
        latest = latest_period_with_data(session)
        billed = session.scalar(select(func.max(Bill.period)))
    assert latest >= billed
    data = client.get("/api/kpi/trend", headers=STAFF).json()
    assert data["latest_period"] == latest and data["periods"][-1] == latest and len(data["periods"]) == 12
    collection = next(k for k in data["billing"] if k["code"] == "collection_rate")
    assert collection["target"] == str(load_policy().targets["collection_rate"].target)
    assert any(p is not None and p["value"] is not None for p in collection["points"])
    fcr = next(k for k in data["service"] if k["code"] == "first_contact_resolution")
    assert set(fcr["channels"]) == {"all", "web", "wechat", "ivr", "alipay"}  # every reported channel spec
    assert data["platform"][0]["code"] == "platform_fault_rate"
    assert client.get("/api/kpi/trend?end=2024-13", headers=STAFF).status_code == 422


def test_customer_card_has_open_tickets_bills_and_room_for_classes(client: TestClient) -> None:
    with session_scope() as session:
        customer = session.scalars(select(Customer).join(Bill, Bill.customer_id == Customer.id)
                                   .order_by(Customer.account_no)).first()
        assert customer is not None
        account = customer.account_no
        open_orders = session.scalar(select(func.count(WorkOrder.id)).where(
            WorkOrder.account_no == account, WorkOrder.status.in_(["open", "in_progress"])))
    card = client.get(f"/api/assist/customers/{account}/card", headers=STAFF).json()
    assert card["account_no"] == account and "*" in card["name"]
    assert card["classes"] == [] and card["tags"] == []
    assert len(card["open_tickets"]) == open_orders
    assert card["bills"] and card["bills"] == sorted(card["bills"], key=lambda b: b["period"], reverse=True)
    assert client.get("/api/assist/customers/000000/card", headers=STAFF).status_code == 404
