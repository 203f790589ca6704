"""docs/prometheus-alerts.yml names only metrics that /metrics exports, and forwards every policy rule."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from channels.ops_policy import load_policy

RULES = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"
PROMQL_WORDS = {"up", "sum", "rate", "by", "le", "and", "time", "clamp_min", "histogram_quantile", "status", "job",
                "target", "e"}


def test_every_metric_in_the_rules_is_exported(client: TestClient) -> None:
    from datetime import timedelta

    from sqlalchemy import delete

    from billing_core.db.engine import session_scope
    from channels.models import AvailabilityInterval
    from channels.probe import check_chat, forget_probe_conversation, record_check

    result = check_chat("http://testserver", client=client)  # a real turn and a probe record
    with session_scope() as session:
        record_check(session, "http://rules-test.invalid", result, timedelta(minutes=3))
        forget_probe_conversation(session, result.conversation_id)
    try:
        text = client.get("/metrics").text
    finally:
        with session_scope() as session:
            session.execute(delete(AvailabilityInterval).where(AvailabilityInterval.target == "http://rules-test.invalid"))
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                if line and not line.startswith("#")}
    exported |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported}
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {"PowerDeskChatPathDown", "PowerDeskHttpErrorRate", "PowerDeskTurnLatencyP95",
                                          "PowerDeskPolicyAlert"}
    for rule in rules:
        names = set(re.findall(r"[a-z_][a-z0-9_]*", re.sub(r'"[^"]*"|\[[^\]]*\]', "", rule["expr"]))) - PROMQL_WORDS
        for name in names:
            assert name in exported or name.removesuffix("_bucket") in exported, (rule["alert"], name)
        assert rule["annotations"]["summary"]


def test_policy_alerts_reach_prometheus_with_their_rule_names(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert {rule.rule for rule in load_policy().alerts} == set(re.findall(r'powerdesk_alert_open\{rule="([^"]+)"', text))
