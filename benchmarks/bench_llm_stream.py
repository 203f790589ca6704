"""LLM-brain streaming: time to the first guarded sentence vs time to the full reply, in process.

The endpoint is the tests' loopback server replaying a recorded answer as a delayed
`chat.completion.chunk` stream (tool-call steps first — verify_identity, lookup_bill — then the
answer, 4 characters a chunk, `--chunk-ms` apart: ~`--chunk-ms` per token of a hosted model).
Each turn goes through `Agent.stream` exactly as the web chat's live stream does: the real
`ChatOpenAI` client, real tools on a SQLite database built with the billing core, the grounding
guard per sentence and on the whole reply, the state store and the turn record. For comparison the
same turn through `Agent.handle` (no `on_event`), which asks unstreamed: the server then sends the
whole answer after the time its stream would have taken.

    .venv/bin/python benchmarks/bench_llm_stream.py [--turns 20] [--chunk-ms 40]

This measures our side only: splitter, guard and plumbing over a fake stream whose pace we set. A
live LLM (its time to first token, its real pace, network) is not measured here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.agent import Agent  # noqa: E402
from agent.llm_brain import LLMBrain, LLMSettings, make_chat_model  # noqa: E402
from agent.state import InMemoryStateStore  # noqa: E402
from agent.streaming import Final, Sentence  # noqa: E402
from tests.agent.llm_fakes import Recorded, completion, replay_server  # noqa: E402
from tests.agent.world import ACCOUNT_A, NOW, build_world  # noqa: E402

VERIFY = ("verify_identity", {"method": "account_secret", "account_no": ACCOUNT_A, "last4": "123X"})
BILL = ("lookup_bill", {"period": "2026-05"})


def answer(amount: object) -> str:
    return (f"您好，已为您查到2026年5月的账单。本期电费为{amount}元，请于2026年7月15日前缴纳。"
            "您可以通过南网在线、微信公众号或银行代扣缴费。如果对读数有疑问，可以申请电费核查。"
            "还有其他可以帮您的吗？")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--chunk-ms", type=float, default=40.0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="powerdesk-bench-stream-"))
    world = build_world(f"sqlite:///{workdir / 'bench.db'}")
    text = answer(world.amounts["A:2026-05"])
    delay = args.chunk_ms / 1000

    chunks = -(-len(text) // 4) + 1  # content chunks and the finish chunk, each `delay` apart

    def script(streamed: bool = True) -> list[Recorded]:
        # Unstreamed (Agent.handle), the same answer arrives whole after the time its stream takes.
        last = (Recorded(completion(text), chunk_delay=delay) if streamed else
                Recorded(completion(text), delay=delay * chunks))
        return [Recorded(completion(tool_calls=[VERIFY])), Recorded(completion(tool_calls=[BILL])), last]

    first_gap, first_sentence, full_stream, full_handle = [], [], [], []
    with replay_server([]) as server:
        settings = LLMSettings(base_url=server.url, model="deepseek-chat", api_key="k", timeout=10.0)
        agent = Agent(sessions=world.sessions, store=InMemoryStateStore(), brain="llm",
                      llm=LLMBrain(make_chat_model(settings)), clock=lambda: NOW, knowledge=lambda: None)
        for i in range(args.turns + 1):  # the first turn warms up (NLU models, client pool)
            server.queue[:] = script()
            started = time.perf_counter()
            first_at = None
            final = None
            for event in agent.stream(f"bench-stream-{i}", "web", f"户号{ACCOUNT_A}尾号123X，查5月电费"):
                if isinstance(event, Sentence) and first_at is None:
                    first_at = time.perf_counter()
                if isinstance(event, Final):
                    final = event.reply
            done = time.perf_counter()
            assert final is not None and final.brain == "llm" and final.grounded and first_at is not None
            first_words = server.first_content_at[-1]
            server.queue[:] = script(streamed=False)
            handled_started = time.perf_counter()
            reply = agent.handle(f"bench-handle-{i}", "web", f"户号{ACCOUNT_A}尾号123X，查5月电费")
            handled = time.perf_counter() - handled_started
            assert reply.text == final.text
            if i == 0:
                continue
            first_gap.append((first_at - first_words) * 1000)
            first_sentence.append((first_at - started) * 1000)
            full_stream.append((done - started) * 1000)
            full_handle.append(handled * 1000)

    sentences = len([s for s in text.replace("？", "。").split("。") if s])
    print(f"LLM-brain turns: {args.turns}, fake stream {args.chunk_ms:.0f} ms per 4-character chunk, "
          f"answer {len(text)} characters in {sentences} sentences (after 2 tool-call steps)")
    print(f"  model's first words -> first sentence out : p50 {statistics.median(first_gap):7.1f} ms   "
          f"max {max(first_gap):7.1f} ms")
    print(f"  turn start -> first sentence (Agent.stream): p50 {statistics.median(first_sentence):7.1f} ms")
    print(f"  turn start -> full reply (Agent.stream)    : p50 {statistics.median(full_stream):7.1f} ms")
    print(f"  turn start -> full reply (Agent.handle)    : p50 {statistics.median(full_handle):7.1f} ms")
    if hasattr(os, "getloadavg"):
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("not measured here: a live LLM (time to first token, real pace, network)")


if __name__ == "__main__":
    main()
