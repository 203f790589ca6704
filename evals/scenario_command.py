"""`powerdesk eval run`: the scenario suite through the real Agent, judged, reported, gated."""

from __future__ import annotations

import json
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import typer

from evals.scenario import DEFAULT_DIR, ScenarioError, load_scenarios

THRESHOLDS_FILE = Path(__file__).with_name("thresholds.toml")


def success_threshold(path: Path = THRESHOLDS_FILE) -> float:
    """The suite's success gate from `thresholds.toml` ([scenarios] success)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        value = float(data["scenarios"]["success"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"{path}: scenarios.success: missing or not a number ({exc})") from exc
    if not 0 <= value <= 1:
        raise ScenarioError(f"{path}: scenarios.success: must be within 0..1, got {value}")
    return value


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code=2)


def run(
    directory: Path = typer.Argument(DEFAULT_DIR, help="场景目录（或单个 YAML 文件）"),
    trials: int = typer.Option(1, "--trials", "-k", help="每个场景运行次数（计算 pass^1…pass^k）"),
    brain: str = typer.Option("local", "--brain", help="local | llm"),
    user: str = typer.Option("scripted", "--user", help="scripted（确定性模拟用户）| llm（需 POWERDESK_LLM_BASE_URL）"),
    via: str = typer.Option("http", "--via", help="http：网页/热线场景经渠道 HTTP 接口；agent：直接调用 Agent"),
    as_json: bool = typer.Option(False, "--json", help="输出 JSON"),
    reports: Optional[Path] = typer.Option(None, "--reports", help="报告目录（默认 $POWERDESK_VAR_DIR/reports）"),
    export_records: bool = typer.Option(False, "--export-records",
                                        help="把评测会话记录写入配置的数据库，供 powerdesk kpi report 使用"),
) -> None:
    """运行场景评测：真实 Agent + 模拟用户，按最终状态判定，输出成功率、pass^k、FCR 等。"""
    if trials < 1:
        _fail("trials: 至少为 1")
    if brain not in ("local", "llm"):
        _fail(f"brain: 只能是 local 或 llm，而不是 {brain!r}")
    if via not in ("http", "agent"):
        _fail(f"via: 只能是 http 或 agent，而不是 {via!r}")
    if user not in ("scripted", "llm"):
        _fail(f"user: 只能是 scripted 或 llm，而不是 {user!r}")
    if user == "llm" or brain == "llm":
        from evals.user_sim import llm_user_available

        if not llm_user_available():
            _fail(f"{'brain' if brain == 'llm' else 'user'}: 需要先配置 POWERDESK_LLM_BASE_URL")
    if export_records:
        from billing_core.settings import database_url
        from evals.records_export import ExportError, check_target

        try:
            check_target(database_url())
        except ExportError as exc:
            _fail(str(exc))
    try:
        scenarios = load_scenarios(directory)
        threshold = success_threshold()
    except ScenarioError as exc:
        _fail(str(exc))
        return
    from billing_core.settings import var_dir
    from evals.report import write_reports
    from evals.runner import run_suite

    def progress(result) -> None:  # type: ignore[no-untyped-def]
        if not as_json:
            mark = "✓" if result.success else "✗"
            print(f"{mark} {result.category}/{result.scenario_id} #{result.trial}", file=sys.stderr,
                  flush=True)

    suite = run_suite(scenarios, trials=trials, brain=brain, user_kind=user, progress=progress, via=via)
    totals = suite.totals()
    paths = write_reports(suite, reports or Path(var_dir()) / "reports", threshold)
    if export_records:
        from billing_core.settings import database_url
        from evals.records_export import export_records as export

        run_id = f"eval-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        written = export(suite.records, database_url(), run_id)
        if not as_json:
            typer.echo(f"已导出 {written} 条会话记录到 {database_url()}")
    passed = totals["success"] >= threshold
    if as_json:
        typer.echo(json.dumps({"totals": totals, "threshold": threshold, "passed": passed,
                               "reports": {k: str(v) for k, v in paths.items()},
                               "scenarios": [s.__dict__ for s in suite.per_scenario()]},
                              ensure_ascii=False, indent=1, default=str))
    else:
        from evals.report import totals_table

        for name, value in totals_table(totals):
            typer.echo(f"{name}: {value}")
        for category, figures in totals["by_category"].items():
            typer.echo(f"  {category}: {figures['successes']}/{figures['trials']}")
        typer.echo(f"报告：{paths['markdown']}  {paths['html']}")
        typer.echo(("通过" if passed else "未通过") + f"门槛 success ≥ {threshold}")
    if not passed:
        raise typer.Exit(code=1)
