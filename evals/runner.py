"""Run scenarios through the real `Agent` with a simulated customer, judge them, add up the figures.

Each trial gets a fresh database built from the scenario, the Agent's records land in it, and
they are collected so they can be exported for `powerdesk kpi report`.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from evals.http_channel import HTTP_CHANNELS, HttpChannelClient
from evals.judge import Check, TurnLog, Verdict, judge, ungrounded_figures
from evals.metrics import pass_hat_k, percentile
from evals.scenario import Scenario
from evals.user_sim import STOP, TRANSFER, LLMUser, ScriptedUser
from evals.world import World, build_world


@dataclass
class TrialResult:
    scenario_id: str
    category: str
    trial: int
    success: bool
    turns: int
    handoff: bool
    fcr: bool
    outcome: str | None
    grounding_violations: list[str]
    guard_replacements: int
    leaks: list[str]
    latencies_ms: list[float]
    failed_checks: list[dict[str, Any]]
    transcript: list[dict[str, Any]]
    error: str | None = None


@dataclass
class ScenarioSummary:
    scenario_id: str
    category: str
    trials: int
    successes: int
    failed_checks: list[dict[str, Any]]  # of the first failing trial


@dataclass
class SuiteResult:
    brain: str
    trials: int
    results: list[TrialResult] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def per_scenario(self) -> list[ScenarioSummary]:
        grouped: dict[str, list[TrialResult]] = defaultdict(list)
        for result in self.results:
            grouped[result.scenario_id].append(result)
        out = []
        for scenario_id, results in grouped.items():
            failing = next((r for r in results if not r.success), None)
            out.append(ScenarioSummary(scenario_id, results[0].category, len(results),
                                       sum(r.success for r in results),
                                       failing.failed_checks if failing else []))
        return out

    def totals(self) -> dict[str, Any]:
        results = self.results
        scenarios = self.per_scenario()
        latencies = [ms for r in results for ms in r.latencies_ms]
        by_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for s in scenarios:
            by_category[s.category][0] += s.successes
            by_category[s.category][1] += s.trials
        n = len(results) or 1
        return {
            "scenarios": len(scenarios),
            "trials": self.trials,
            "success": sum(r.success for r in results) / n,
            "pass_hat_k": {k: pass_hat_k([(s.successes, s.trials) for s in scenarios], k)
                           for k in range(1, self.trials + 1)} if scenarios else {},
            "fcr": sum(r.fcr for r in results) / n,
            "handoff_rate": sum(r.handoff for r in results) / n,
            "avg_turns": sum(r.turns for r in results) / n,
            "grounding_violations": sum(len(r.grounding_violations) for r in results),
            "guard_replacements": sum(r.guard_replacements for r in results),
            "leaks": sum(len(r.leaks) for r in results),
            "errors": sum(r.error is not None for r in results),
            "latency_p50_ms": percentile(latencies, 50),
            "latency_p95_ms": percentile(latencies, 95),
            "by_category": {c: {"successes": v[0], "trials": v[1], "success": v[0] / v[1]}
                            for c, v in sorted(by_category.items())},
            "seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"brain": self.brain, "totals": self.totals(),
                "scenarios": [asdict(s) for s in self.per_scenario()],
                "trials": [asdict(r) for r in self.results]}


AgentFactory = Callable[[World, str], Any]


def default_agent_factory(world: World, brain: str) -> Any:
    """The real Agent on the scenario's database, an in-process state store and the scenario clock."""
    from agent.agent import Agent
    from agent.state import InMemoryStateStore

    return Agent(sessions=world.sessions, store=InMemoryStateStore(), brain=brain, clock=world.clock)


def _identity(scenario: Scenario) -> dict[str, str]:
    user = scenario.user
    if scenario.channel == "wechat" and user.openid:
        return {"openid": user.openid}
    if scenario.channel == "ivr" and user.caller:
        return {"caller": user.caller}
    return {}


def run_trial(scenario: Scenario, trial: int, brain: str, agent_factory: AgentFactory = default_agent_factory,
              user_kind: str = "scripted", user_model: Any = None,
              via: str = "agent") -> tuple[TrialResult, list[dict[str, Any]]]:
    """One conversation of `scenario`, judged; returns the result and the conversation's records.

    `via="http"` sends web and IVR scenarios through the channels' HTTP app."""
    world = build_world(scenario)
    # Over HTTP the channels read their own tables (e.g. hand-offs held by staff) from the
    # configured database: point it at the scenario's, as one deployment shares one database.
    previous = os.environ.get("POWERDESK_DATABASE_URL")
    if via == "http":
        os.environ["POWERDESK_DATABASE_URL"] = world.url
    try:
        return _run(world, scenario, trial, brain, agent_factory, user_kind, user_model, via)
    finally:
        if via == "http":
            if previous is None:
                os.environ.pop("POWERDESK_DATABASE_URL", None)
            else:
                os.environ["POWERDESK_DATABASE_URL"] = previous
        world.close()


def _run(world: World, scenario: Scenario, trial: int, brain: str, agent_factory: AgentFactory,
         user_kind: str, user_model: Any, via: str) -> tuple[TrialResult, list[dict[str, Any]]]:
    if user_kind == "llm":
        user: Any = (LLMUser(scenario.user, user_model) if user_model is not None
                     else LLMUser.from_env(scenario.user))
    else:
        user = ScriptedUser(scenario.user)
    conversation_id = f"eval-{scenario.id}-t{trial}"
    identity = _identity(scenario)
    record_id = conversation_id
    turns: list[TurnLog] = []
    error: str | None = None
    final_state = None
    try:
        agent = agent_factory(world, brain)
        if via == "http" and scenario.channel in HTTP_CHANNELS:
            agent = HttpChannelClient(agent, scenario.channel, conversation_id, identity)
            record_id = agent.agent_conversation_id
        message = user.first_message()
        while message not in (STOP, TRANSFER):
            started = time.perf_counter()
            reply = agent.handle(conversation_id, scenario.channel, message, message_id=f"m{len(turns) + 1}",
                                 identity=identity or None)
            elapsed = (time.perf_counter() - started) * 1000
            data = reply.to_dict() if hasattr(reply, "to_dict") else dict(reply)
            turns.append(TurnLog(user=message, reply=data, latency_ms=elapsed))
            message = user.next_message(data)
        final_state = agent.state(record_id) if hasattr(agent, "state") else None
        if hasattr(agent, "end"):
            agent.end(record_id)  # the customer left: settle the conversation's record
    except Exception as exc:  # a crash is a failed trial with its cause, not a crashed run
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
    records, tool_results = _records(world, record_id)
    if error is None:
        verdict = judge(world, turns, final_state)
    else:
        verdict = Verdict(checks=[Check("agent_error", False, error.splitlines()[0])])
    ungrounded = ungrounded_figures(turns, tool_results) if turns else []
    replies = [t.reply for t in turns]
    handoff = any(r.get("handoff") for r in replies)
    outcome = replies[-1].get("outcome") if replies else None
    result = TrialResult(
        scenario_id=scenario.id, category=scenario.category, trial=trial,
        success=verdict.success and error is None, turns=len(turns), handoff=handoff,
        # First-contact resolution: settled by the agent in this one conversation (resolved or a
        # ticket, no hand-off) and settled *right* — a "resolved" wrong answer resolves nothing.
        fcr=verdict.success and error is None and outcome in ("resolved", "ticket") and not handoff,
        outcome=outcome,
        grounding_violations=ungrounded,
        guard_replacements=sum(1 for r in replies if r.get("grounded") is False),
        leaks=verdict.leaks, latencies_ms=[t.latency_ms for t in turns],
        failed_checks=[{"name": c.name, "detail": c.detail} for c in verdict.failed],
        transcript=[{"user": t.user, "agent": t.reply.get("text", ""), "awaiting": t.reply.get("awaiting")}
                    for t in turns],
        error=error)
    return result, records


def _records(world: World, conversation_id: str) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """The Agent's records of the conversation (for export) and each turn's tool results."""
    try:
        from agent.models import ConversationRecord
    except ImportError:
        return [], []
    with world.sessions() as session:
        rows = list(session.scalars(select(ConversationRecord).where(
            ConversationRecord.conversation_id == conversation_id)))
        records, tool_results = [], []
        for row in rows:
            turns = [{c.name: getattr(t, c.name) for c in t.__table__.columns
                      if c.name not in ("id", "conversation_pk")}
                     for t in row.turns]
            record = {c.name: getattr(row, c.name) for c in row.__table__.columns if c.name != "id"}
            record["turns"] = turns
            records.append(record)
            tool_results += [[call.get("result") for call in t.tool_calls or []] for t in row.turns]
        return records, tool_results


def run_suite(scenarios: list[Scenario], trials: int = 1, brain: str = "local",
              agent_factory: AgentFactory = default_agent_factory, user_kind: str = "scripted",
              user_model: Any = None, progress: Callable[[TrialResult], None] | None = None,
              via: str = "agent", warm_up: bool = True) -> SuiteResult:
    if trials < 1:
        raise ValueError("trials: must be at least 1")
    if via not in ("agent", "http"):
        raise ValueError(f"via: must be 'agent' or 'http', not {via!r}")
    if scenarios and warm_up:
        # One discarded trial first, so the one-off loading of models and the knowledge index
        # does not land in the first scenario's turn latency.
        run_trial(scenarios[0], 0, scenarios[0].brain or brain, agent_factory, user_kind, user_model, via)
    started = time.perf_counter()
    suite = SuiteResult(brain=brain, trials=trials)
    for scenario in scenarios:
        for trial in range(1, trials + 1):
            result, records = run_trial(scenario, trial, scenario.brain or brain, agent_factory, user_kind,
                                        user_model, via)
            suite.results.append(result)
            suite.records += records
            if progress is not None:
                progress(result)
    suite.seconds = time.perf_counter() - started
    return suite
