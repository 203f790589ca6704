"""`powerdesk eval run`: bad input exits 2 with the field named and runs nothing."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from evals.cli import app
from evals.scenario_command import success_threshold

runner = CliRunner()


def test_bad_options_exit_2_naming_the_field(tmp_path: Path):
    for args, field in ((["--trials", "0"], "trials"), (["--brain", "gpt"], "brain"),
                        (["--via", "fax"], "via"),
                        (["--user", "robot"], "user")):
        result = runner.invoke(app, ["run", str(tmp_path), *args])
        assert result.exit_code == 2, (args, result.output)
        assert field in result.output


def test_llm_brain_without_endpoint_is_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("POWERDESK_LLM_BASE_URL", raising=False)
    result = runner.invoke(app, ["run", str(tmp_path), "--brain", "llm"])
    assert result.exit_code == 2 and "POWERDESK_LLM_BASE_URL" in result.output


def test_bad_scenario_file_exit_2_naming_file_and_field(tmp_path: Path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("channel: web\nuser: {opening: hi}\nexpect: {}\n", encoding="utf-8")
    result = runner.invoke(app, ["run", str(tmp_path)])
    assert result.exit_code == 2
    assert "broken.yaml" in result.output and "initial_state" in result.output


def test_threshold_file_is_read_and_checked(tmp_path: Path):
    assert success_threshold() >= 0.9
    bad = tmp_path / "t.toml"
    bad.write_text("[scenarios]\nsuccess = 1.5\n", encoding="utf-8")
    try:
        success_threshold(bad)
    except Exception as exc:  # ScenarioError
        assert "scenarios.success" in str(exc)
    else:
        raise AssertionError("an out-of-range threshold was accepted")


def test_export_to_an_unmigrated_database_is_refused_before_running(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("POWERDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["run", str(tmp_path), "--export-records"])
    assert result.exit_code == 2 and "powerdesk db upgrade" in result.output
    assert not (tmp_path / "empty.db").exists()  # the check creates nothing
    (tmp_path / "empty.db").write_bytes(b"")
    result = runner.invoke(app, ["run", str(tmp_path), "--export-records"])
    assert result.exit_code == 2 and "powerdesk db upgrade" in result.output
