"""The runner's plumbing with stand-in agents (the real Agent runs in test_suite.py): a correct
agent passes, a leaky one fails with the leak named, a crash is a failed trial, reports are written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.judge import money_text
from evals.report import write_reports
from evals.runner import run_suite
from evals.scenario import load_scenario

SCENARIO = """
channel: web
initial_state:
  customers:
    - {key: me, account_no: "440100100001", name: 陈志强, phone: "13800138000", id_last4: "123X",
       address: 广州市天河区体育西路1号, bills: [{period: 2026-05, usage: {total_kwh: 480}}]}
    - {key: neighbour, account_no: "440100100002", name: 林美玲, phone: "13900139000", id_last4: "5678",
       address: 广州市越秀区解放北路968号, bills: [{period: 2026-05, usage: {total_kwh: 157}}]}
user: {customer: me, wants: 查电费, opening: 查电费, knows: {account_no: "440100100001", last4: "8000"}}
expect:
  outcome: resolved
  reply_contains: [{bill: 2026-05, field: amount}]
"""


@dataclass
class StandInAgent:
    """Asks for 户号 and tail, then answers with the bill of `answer_key` (a real world lookup)."""

    world: Any
    answer_key: str
    seen: list[str] = field(default_factory=list)

    def handle(self, conversation_id, channel, text, message_id=None, identity=None):
        self.seen.append(text)
        if len(self.seen) == 1:
            return {"text": "请提供户号", "awaiting": "account_no"}
        if len(self.seen) == 2:
            return {"text": "请提供手机后4位", "awaiting": "last4"}
        amount = money_text(self.world.bills[(self.answer_key, "2026-05")].computed.total)
        return {"text": f"电费{amount}元", "outcome": "resolved", "awaiting": None}


def _scenario(tmp_path: Path):
    path = tmp_path / "web" / "lookup.yaml"
    path.parent.mkdir()
    path.write_text(SCENARIO, encoding="utf-8")
    return load_scenario(path)


def test_correct_agent_passes_every_trial(tmp_path):
    suite = run_suite([_scenario(tmp_path)], trials=2, agent_factory=lambda w, b: StandInAgent(w, "me"))
    totals = suite.totals()
    assert totals["success"] == 1.0 and totals["pass_hat_k"] == {1: 1.0, 2: 1.0}
    assert totals["avg_turns"] == 3 and totals["fcr"] == 1.0 and totals["leaks"] == 0
    paths = write_reports(suite, tmp_path / "reports", 0.9)
    assert "pass^2" in paths["markdown"].read_text(encoding="utf-8")
    assert list((tmp_path / "reports").glob("*.png")) and paths["html"].exists()


def test_leaky_agent_fails_with_the_leak_named(tmp_path):
    suite = run_suite([_scenario(tmp_path)], agent_factory=lambda w, b: StandInAgent(w, "neighbour"))
    result = suite.results[0]
    assert not result.success
    assert result.leaks == ["neighbour.bill 2026-05 amount"]
    assert result.outcome == "resolved" and not result.fcr  # a wrong answer is not a resolution
    assert suite.totals()["leaks"] == 1


def test_crashing_agent_is_a_failed_trial_not_a_crashed_run(tmp_path):
    class Broken:
        def handle(self, *args, **kwargs):
            raise RuntimeError("boom")

    suite = run_suite([_scenario(tmp_path)], agent_factory=lambda w, b: Broken())
    assert suite.results[0].error and "boom" in suite.results[0].failed_checks[0]["detail"]
    assert suite.totals()["errors"] == 1 and suite.totals()["success"] == 0.0


def test_llm_simulated_user_drives_the_conversation(tmp_path):
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class Scripted(BaseChatModel):
        script: list[str]

        @property
        def _llm_type(self) -> str:
            return "scripted"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.script.pop(0)))])

    # Each trial (the warm-up one too) consumes: 户号, tail, then STOP after the answer.
    model = Scripted(script=["440100100001", "8000", "###STOP###"] * 2)
    suite = run_suite([_scenario(tmp_path)], agent_factory=lambda w, b: StandInAgent(w, "me"),
                      user_kind="llm",
                      user_model=model)
    result = suite.results[0]
    assert [t["user"] for t in result.transcript] == ["查电费", "440100100001", "8000"]
    assert result.success
