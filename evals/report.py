"""Write the suite's Markdown and HTML reports (with matplotlib charts) and its JSON results.

The report is for people deciding whether the agent got better: totals first, then success by
category, then every failing scenario with the checks that failed and its transcript.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals.runner import SuiteResult


def _charts(suite: SuiteResult, directory: Path, stem: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = suite.totals()
    paths: list[Path] = []
    categories = list(totals["by_category"])
    rates = [totals["by_category"][c]["success"] for c in categories]
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.barh(categories, rates, color="#2b7bb9")
    axis.set_xlim(0, 1)
    axis.set_xlabel("success rate")
    axis.set_title("Success by category")
    figure.tight_layout()
    path = directory / f"{stem}-by-category.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    paths.append(path)

    latencies = [ms for r in suite.results for ms in r.latencies_ms]
    figure, axis = plt.subplots(figsize=(8, 3))
    axis.hist(latencies or [0], bins=30, color="#6a9f3a")
    axis.set_xlabel("turn latency (ms)")
    axis.set_ylabel("turns")
    axis.set_title(f"Turn latency: p50 {totals['latency_p50_ms']:.1f} ms, "
                   f"p95 {totals['latency_p95_ms']:.1f} ms")
    figure.tight_layout()
    path = directory / f"{stem}-latency.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    paths.append(path)

    ks = sorted(totals["pass_hat_k"])
    figure, axis = plt.subplots(figsize=(5, 3))
    axis.plot(ks, [totals["pass_hat_k"][k] for k in ks], marker="o")
    axis.set_ylim(0, 1.05)
    axis.set_xlabel("k")
    axis.set_ylabel("pass^k")
    axis.set_title("pass^k")
    figure.tight_layout()
    path = directory / f"{stem}-pass-k.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    paths.append(path)
    return paths


def totals_table(totals: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("场景数 scenarios", str(totals["scenarios"])), ("每个场景试验次数 trials", str(totals["trials"])),
            ("成功率 success", f"{totals['success']:.3f}")]
    rows += [(f"pass^{k}", f"{v:.3f}") for k, v in totals["pass_hat_k"].items()]
    rows += [("首次解决率 FCR", f"{totals['fcr']:.3f}"), ("转人工率 handoff rate", f"{totals['handoff_rate']:.3f}"),
             ("平均轮数 avg turns", f"{totals['avg_turns']:.2f}"),
             ("未被工具支撑的数字 grounding violations", str(totals["grounding_violations"])),
             ("被护栏替换的回复 guard replacements", str(totals["guard_replacements"])),
             ("泄露 leaks", str(totals["leaks"])), ("运行错误 errors", str(totals["errors"])),
             ("轮次延迟 p50 (ms)", f"{totals['latency_p50_ms']:.1f}"),
             ("轮次延迟 p95 (ms)", f"{totals['latency_p95_ms']:.1f}"), ("耗时 seconds", f"{totals['seconds']:.1f}")]
    return rows


def scenario_rows(suite: SuiteResult) -> list[tuple[str, ...]]:
    """Per scenario: successes/trials, pass^k at k = trials, turns, hand-offs, FCR, p95 latency."""
    from collections import defaultdict

    from evals.metrics import pass_hat_k_task, percentile

    grouped = defaultdict(list)
    for result in suite.results:
        grouped[(result.category, result.scenario_id)].append(result)
    rows = []
    for (category, scenario_id), results in sorted(grouped.items()):
        n, c = len(results), sum(r.success for r in results)
        rows.append((scenario_id, category, f"{c}/{n}", f"{pass_hat_k_task(c, n, n):.2f}",
                     f"{sum(r.turns for r in results) / n:.1f}", f"{sum(r.handoff for r in results)}/{n}",
                     f"{sum(r.fcr for r in results)}/{n}",
                     f"{percentile([ms for r in results for ms in r.latencies_ms], 95):.0f}"))
    return rows


def markdown(suite: SuiteResult, charts: list[Path], threshold: float | None) -> str:
    totals = suite.totals()
    lines = [f"# PowerDesk 场景评测报告（brain: {suite.brain}）", "",
             f"生成时间 {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
             + (f"；门槛 success ≥ {threshold}" if threshold else ""), "",
             "| 指标 | 数值 |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in totals_table(totals)]
    lines += ["", "## 按类别", "", "| 类别 | 成功/试验 | 成功率 |", "|---|---|---|"]
    lines += [f"| {c} | {v['successes']}/{v['trials']} | {v['success']:.2f} |"
              for c, v in totals["by_category"].items()]
    lines += [""] + [f"![{p.stem}]({p.name})" for p in charts]
    lines += ["", "## 按场景", "", "| 场景 | 类别 | 成功/试验 | pass^k | 平均轮数 | 转人工 | FCR | p95 ms |",
              "|---|---|---|---|---|---|---|---|"]
    for row in scenario_rows(suite):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    failing = [r for r in suite.results if not r.success]
    lines += ["", f"## 未通过的试验（{len(failing)}）", ""]
    for result in failing:
        lines.append(f"### {result.category}/{result.scenario_id} (trial {result.trial})")
        for check in result.failed_checks:
            lines.append(f"- ✗ {check['name']}: {check['detail']}")
        for turn in result.transcript:
            lines.append(f"  - 用户：{turn['user']}")
            lines.append(f"  - 客服：{turn['agent']}" + (f"（等待 {turn['awaiting']}）" if turn["awaiting"] else ""))
        lines.append("")
    return "\n".join(lines) + "\n"


def html_report(suite: SuiteResult, charts: list[Path], threshold: float | None) -> str:
    totals = suite.totals()
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(n)}</td><td>{esc(v)}</td></tr>" for n, v in totals_table(totals))
    cats = "".join(f"<tr><td>{esc(c)}</td><td>{v['successes']}/{v['trials']}</td>"
                   f"<td>{v['success']:.2f}</td></tr>"
                   for c, v in totals["by_category"].items())
    per_scenario = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
                           for row in scenario_rows(suite))
    images = "".join(f'<img src="{esc(p.name)}" alt="{esc(p.stem)}">' for p in charts)
    failures = []
    for result in suite.results:
        if result.success:
            continue
        checks = "".join(f"<li>✗ {esc(c['name'])}: {esc(c['detail'])}</li>" for c in result.failed_checks)
        talk = "".join(f"<p><b>用户</b> {esc(t['user'])}<br><b>客服</b> {esc(t['agent'])}</p>"
                       for t in result.transcript)
        failures.append(f"<details><summary>{esc(result.category)}/{esc(result.scenario_id)} "
                        f"(trial {result.trial})</summary><ul>{checks}</ul>{talk}</details>")
    gate = f"门槛 success ≥ {threshold}" if threshold else ""
    return (f"<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>PowerDesk 场景评测</title>"
            f"<style>body{{font-family:sans-serif;max-width:960px;margin:auto}}td{{padding:2px 8px}}"
            f"img{{max-width:100%}}</style><h1>PowerDesk 场景评测（brain: {esc(suite.brain)}）</h1>"
            f"<p>{esc(gate)}</p><table>{rows}</table><h2>按类别</h2><table>{cats}</table>{images}"
            f"<h2>按场景</h2><table><tr><th>场景</th><th>类别</th><th>成功/试验</th><th>pass^k</th><th>平均轮数</th>"
            f"<th>转人工</th><th>FCR</th><th>p95 ms</th></tr>{per_scenario}</table>"
            f"<h2>未通过的试验</h2>{''.join(failures) or '<p>无</p>'}</html>")


def write_reports(suite: SuiteResult, directory: Path, threshold: float | None = None) -> dict[str, Path]:
    """Markdown, HTML, JSON results and the exported records, named by time; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"eval-{datetime.now(UTC):%Y%m%dT%H%M%S}-{suite.brain}"
    charts = _charts(suite, directory, stem)
    paths = {"markdown": directory / f"{stem}.md", "html": directory / f"{stem}.html",
             "json": directory / f"{stem}.json", "records": directory / f"{stem}-records.jsonl"}
    paths["markdown"].write_text(markdown(suite, charts, threshold), encoding="utf-8")
    paths["html"].write_text(html_report(suite, charts, threshold), encoding="utf-8")
    paths["json"].write_text(json.dumps(suite.to_dict(), ensure_ascii=False, indent=1, default=str),
                             encoding="utf-8")
    with paths["records"].open("w", encoding="utf-8") as handle:
        for record in suite.records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return paths
