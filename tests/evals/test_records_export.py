"""Eval conversations exported as records feed `powerdesk kpi report` (channels.kpi)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from agent.models import ConversationRecord, Outcome
from agent.records import Recorder
from billing_core.db.engine import make_engine
from channels.kpi import kpi_report
from evals.records_export import export_records
from evals.runner import _records
from evals.scenario import load_scenario
from evals.world import _migrated_template, build_world

SCENARIO = """
initial_state:
  customers:
    - {key: me, account_no: "440100100001", name: 陈志强, phone: "13800138000", id_last4: "123X",
       address: 广州市天河区体育西路1号}
user: {customer: me, wants: 查电费, opening: 查电费}
expect: {}
"""


def test_records_of_a_scenario_db_are_exported_and_counted_by_the_kpi_report(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    world = build_world(load_scenario(path))
    try:
        recorder = Recorder(world.sessions)
        started = datetime(2026, 6, 26, 2, tzinfo=UTC)
        record_id = recorder.start("eval-s-t1", "web", "local", account_no="440100100001", started_at=started)
        recorder.record_turn(record_id, user_text="查电费", reply_text="请提供户号", brain="local",
                             intents=["lookup_bill"],
                             tool_calls=[], citations=[], latency_ms=12, outcome=Outcome.RESOLVED)
        recorder.finish(record_id)
        records, tool_results = _records(world, "eval-s-t1")
    finally:
        world.close()
    assert len(records) == 1 and records[0]["turns"][0]["user_text"] == "查电费" and tool_results == [[]]

    target = tmp_path / "main.db"
    target.write_bytes(_migrated_template().read_bytes())
    url = f"sqlite:///{target}"
    assert export_records(records, url, "run1") == 1
    assert export_records(records, url, "run2") == 1  # a second run does not collide
    engine = make_engine(url)
    with Session(engine) as session:
        ids = sorted(r.conversation_id for r in session.query(ConversationRecord))
        assert ids == ["run1:eval-s-t1", "run2:eval-s-t1"]
        report = kpi_report(session, "2026-06")
        figures = {f.code: f for f in report.service["all"]}
        fcr = next(f for code, f in figures.items() if "fcr" in code.lower() or "一次" in f.name)
        assert fcr.denominator is not None and fcr.denominator >= 1
    engine.dispose()
