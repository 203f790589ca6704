"""The four kinds of CX indicators: the file is validated at load, each figure computed from the records
with its numerator and denominator; the staff routes serve them and the HTML report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent.experience.voc.cli import app
from agent.experience.voc.indicators import INDICATORS_FILE, IndicatorError, indicator_values, load_indicators
from agent.models import Outcome
from billing_core.db.models import WorkOrder, WorkOrderKind, WorkOrderPriority, WorkOrderStatus
from tests.agent.experience.voc_world import add_conversation
from tests.agent.world import ACCOUNT_A, World

NOW = datetime(2026, 12, 20, tzinfo=UTC)


def _seed(world: World) -> None:
    day = datetime(2026, 11, 3, 2, tzinfo=UTC)
    with world.sessions.begin() as session:
        add_conversation(session, "i-1", started_at=day, account_no=ACCOUNT_A, csat=5, topic="bill_amount",
                         texts=["查电费", "8000"], latency_ms=1500)
        add_conversation(session, "i-2", started_at=day + timedelta(days=1), csat=2, outcome=Outcome.TRANSFERRED,
                         texts=["转人工"], latency_ms=600)
        session.add(WorkOrder(no="WO202611040001", kind=WorkOrderKind.COMPLAINT, account_no=ACCOUNT_A,
                              status=WorkOrderStatus.OPEN, priority=WorkOrderPriority.HIGH, title="投诉：服务态度",
                              description="", channel="web", created_at=day + timedelta(days=1),
                              sla_due_at=day + timedelta(days=2), payload={"category": "service_attitude"}))


def test_every_kind_is_computed_from_the_records(world: World) -> None:
    _seed(world)
    with world.sessions() as session:
        values = {v.code: v for v in indicator_values(session, "2026-11", now=NOW)}
    assert {v.kind for v in values.values()} == {"interaction", "perception", "behaviour", "result"}
    assert values["response_time"].value == Decimal("1.20") and values["response_time"].denominator == 3
    assert values["turns_per_conversation"].value == Decimal("1.50")
    assert values["satisfaction"].value == Decimal("50.00")
    assert values["handoff_rate"].value == Decimal("50.00") and values["self_service_rate"].numerator == 1
    assert values["needs_on_time"].denominator == 1 and values["needs_on_time"].value == Decimal("0.00")  # overdue
    assert values["complaint_rate"].numerator == 1 and values["complaint_rate"].denominator == 2  # 2 customers
    assert values["complaint_rate"].value == Decimal("5000.00")
    assert values["negative_experience_rate"].value == Decimal("0.00")
    assert values["first_contact_resolution"].denominator == 2 and values["first_contact_resolution"].numerator == 1
    assert all(v.formula and v.records for v in values.values())


def test_an_empty_period_is_no_data_not_zero(world: World) -> None:
    with world.sessions() as session:
        values = {v.code: v for v in indicator_values(session, "2030-01", now=NOW)}
    assert values["satisfaction"].value is None and values["response_time"].value is None


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["indicators"][0].update(kind="feeling"), "indicators.0.kind"),
    (lambda d: d["indicators"][1].update(code="made_up"), "indicators.1.code"),
    (lambda d: d["indicators"][2].pop("formula"), "indicators.2.formula"),
    (lambda d: d.update(indicators=[i for i in d["indicators"] if i["kind"] != "result"]), "kind result"),
])
def test_a_malformed_file_is_refused_naming_file_and_field(tmp_path: Path, change, field: str) -> None:
    data = yaml.safe_load(INDICATORS_FILE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "indicators.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(IndicatorError) as error:
        load_indicators(path)
    assert "indicators.yaml" in str(error.value) and field in str(error.value)


def test_cli_json(world: World, monkeypatch) -> None:
    _seed(world)
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    result = CliRunner().invoke(app, ["indicators", "--period", "2026-11"])
    assert result.exit_code == 0, result.output
    assert "交互指标" in result.output and "结果指标" in result.output and "客户满意度" in result.output
