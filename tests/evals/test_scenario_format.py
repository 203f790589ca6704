"""The scenario files: all load, and a bad file is refused with its path and field named."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from evals.scenario import DEFAULT_DIR, FactRef, ScenarioError, load_scenario, load_scenarios

REQUIRED_CATEGORIES = {"bill_lookup", "bill_high", "payment", "overdue", "dispute", "complaint", "policy_kb",
                       "identity", "correction", "multi_intent", "ivr", "wechat", "out_of_scope",
                       "adversarial"}


def test_suite_loads_with_at_least_80_scenarios_in_every_category():
    scenarios = load_scenarios(DEFAULT_DIR)
    assert len(scenarios) >= 80
    counts = Counter(s.category for s in scenarios)
    assert REQUIRED_CATEGORIES <= set(counts), REQUIRED_CATEGORIES - set(counts)
    assert all(counts[c] >= 4 for c in REQUIRED_CATEGORIES), counts


def test_no_scenario_types_an_amount_in_its_expectations():
    # Money is referenced symbolically (bill/field, late_fee, line); a literal "123.45" would drift.
    import re

    money = re.compile(r"\d+\.\d{2}")
    for scenario in load_scenarios(DEFAULT_DIR):
        for fact in [*scenario.expect.reply_contains, *scenario.expect.reply_not_contains]:
            if isinstance(fact, str):
                assert not money.search(fact), f"{scenario.path}: literal amount {fact!r}"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """
channel: web
initial_state:
  customers:
    - {key: me, account_no: "440100100001", name: 陈志强, phone: "13800138000", id_last4: "123X",
       address: 广州市天河区体育西路1号, bills: [{period: 2026-05, usage: {total_kwh: 480}}]}
user: {customer: me, wants: 查电费, opening: 查电费}
expect: {reply_contains: [{bill: 2026-05, field: amount}]}
"""


def test_good_file_loads_and_fact_is_symbolic(tmp_path):
    scenario = load_scenario(_write(tmp_path, BASE))
    assert scenario.id == "bad" and scenario.category == tmp_path.name
    assert isinstance(scenario.expect.reply_contains[0], FactRef)


@pytest.mark.parametrize("old,new,field", [
    ('account_no: "440100100001"', 'account_no: "4401"', "account_no"),
    ("period: 2026-05, usage", "period: 2026-13, usage", "period"),
    ("channel: web", "channel: fax", "channel"),
    ("user: {customer: me,", "user: {customer: ghost,", "user.customer"),
    ("{bill: 2026-05, field: amount}", "{bill: 2026-05}", "reply_contains"),
    ("wants: 查电费, ", "", "user.wants"),
    ("opening: 查电费}", "opening: 查电费, knows: {last_4: '8000'}}", "user.knows"),
    ("expect: {reply_contains", "expect: {actions: [lookup_bills], reply_contains", "expect.actions"),
    ("bills: [{period", "meters: [{asset_no: m1, daily_kwh: 9, tou_shares: {peak: '0.5', valley: '0.4'}}], "
     "bills: [{period", "tou_shares"),
    ("bills: [{period", "meters: [{asset_no: m1, estimated_days: [2026-05-31]}], bills: [{period", "estimated_days"),
])
def test_bad_file_names_file_and_field(tmp_path, old, new, field):
    path = _write(tmp_path, BASE.replace(old, new))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(path) in str(error.value)
    assert field in str(error.value)


def test_duplicate_ids_are_refused(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.yaml").write_text(BASE, encoding="utf-8")
    with pytest.raises(ScenarioError, match="already used"):
        load_scenarios(tmp_path)
