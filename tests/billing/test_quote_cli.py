"""`powerdesk billing quote REQUEST.json`: the real command, its JSON output and its bad-input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from billing_core.bill_types import BillRequest
from billing_core.cli.billing import app
from billing_core.tariffs.compute import compute_bill
from billing_core.request_schema import EXAMPLES_DIR, SCHEMA_PATH, bill_request_schema, render

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _write(tmp_path: Path, payload: object | str) -> Path:
    path = tmp_path / "request.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


def _example(name: str) -> dict:
    return json.loads((EXAMPLES_DIR / name).read_text(encoding="utf-8"))


def test_app_is_a_typer_app_with_quote() -> None:
    assert isinstance(app, typer.Typer)
    assert "quote" in [c.name for c in app.registered_commands]


def test_quote_runs_as_a_real_process_and_prints_the_bill() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "billing_core.cli.billing", "quote", str(EXAMPLES_DIR / "residential.json")],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    bill = json.loads(result.stdout)
    assert bill["total"] == "242.55"  # Decimals travel as strings
    assert [(l["code"], l["amount"]) for l in bill["lines"]] == [("tier_1", "153.11"), ("tier_2", "89.44")]
    assert all(l["explanation"] and l["source"] and l["tariff_version"] for l in bill["lines"])


def test_two_part_example_matches_compute_bill() -> None:
    result = runner.invoke(app, ["quote", str(EXAMPLES_DIR / "two_part_ci.json")])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    expected = compute_bill(BillRequest.model_validate(_example("two_part_ci.json")))
    assert Decimal(printed["total"]) == expected.total
    assert {l["code"] for l in printed["lines"]} >= {"energy_critical_peak", "basic_demand", "basic_demand_excess",
                                                      "pf_adjustment", "government_funds"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r["usage"].update(total_kwh="-5"), "usage.total_kwh"),
        (lambda r: r["usage"].update(total_kwh="四百"), "usage.total_kwh"),
        (lambda r: r["attributes"].update(region="atlantis"), "attributes.region"),
        (lambda r: r.update(period_start="2016-01-01", period_end="2016-01-31"), "period_start"),
        (lambda r: r["attributes"].update(category="space_station"), "attributes.category"),
        (lambda r: r.update(surprise=1), "surprise"),
    ],
    ids=["negative", "non-numeric", "unknown-region", "outside-versions", "bad-category", "unknown-field"],
)
def test_bad_input_exits_2_naming_the_field(tmp_path: Path, mutate, field: str) -> None:
    request = _example("residential.json")
    mutate(request)
    path = _write(tmp_path, request)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(app, ["quote", str(path)])
    assert result.exit_code == 2
    assert field in result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_malformed_json_and_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["quote", str(_write(tmp_path, '{"attributes": {'))])
    assert result.exit_code == 2 and "JSON" in result.stderr and result.stdout == ""
    missing = runner.invoke(app, ["quote", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "request_file" in missing.stderr


def test_schema_file_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), (
        "run: .venv/bin/python -m billing_core.request_schema"
    )


@pytest.mark.parametrize("name", ["residential.json", "two_part_ci.json"])
def test_examples_validate_against_the_schema(name: str) -> None:
    jsonschema.validate(_example(name), bill_request_schema())
    for wrong in (-1, "abc"):  # a negative number, a non-numeric string
        bad = _example(name)
        bad["usage"] = {"total_kwh": wrong}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, bill_request_schema())


def test_errors_are_in_chinese_and_name_every_bad_field(tmp_path: Path) -> None:
    request = _example("residential.json")
    request["usage"]["total_kwh"] = "abc"
    request["attributes"]["category"] = "x"
    result = runner.invoke(app, ["quote", str(_write(tmp_path, request))])
    assert result.exit_code == 2
    assert "usage.total_kwh: 不是有效的数字" in result.stderr
    assert "attributes.category: 取值无效" in result.stderr
    request = _example("residential.json")
    request["period_end"] = "2025-06-01"
    result = runner.invoke(app, ["quote", str(_write(tmp_path, request))])
    assert result.exit_code == 2 and "period_end" in result.stderr and "结束日期早于开始日期" in result.stderr


def test_tariffs_lists_versions_and_the_one_in_force() -> None:
    result = runner.invoke(app, ["tariffs", "gz-residential-tiers"])
    assert result.exit_code == 0, result.output
    assert [r["key"] for r in json.loads(result.stdout)] == [
        "gz-residential-tiers@2017-07-01", "gz-residential-tiers@2021-06-01",
    ]
    on = runner.invoke(app, ["tariffs", "gd-ci-tou", "--on", "2021-09-30"])
    assert [r["key"] for r in json.loads(on.stdout)] == ["gd-ci-tou@2017-07-01"]
    unknown = runner.invoke(app, ["tariffs", "gz-nope"])
    assert unknown.exit_code == 2 and "tariff_id" in unknown.stderr
    outside = runner.invoke(app, ["tariffs", "gd-agency-purchase", "--on", "2027-01-01"])
    assert outside.exit_code == 2 and "on:" in outside.stderr
