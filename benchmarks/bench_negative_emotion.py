"""The negative-experience detector: held-out precision/recall/accuracy and cost per message.

    .venv/bin/python benchmarks/bench_negative_emotion.py [--calls 20000] [--errors]

Scores `agent/experience/negative/data/emotion_heldout.yaml` (written before training, never trained
on) with the classifier fitted on `emotion_train.yaml`, and times `detect_emotion` per message
(target: well under 1 ms, as it runs on every local turn with its 20 ms p95 budget).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.experience.negative.emotion import (  # noqa: E402
    HELDOUT_FILE, TRAIN_FILE, default_classifier, detect_emotion, heldout_metrics, load_examples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000, help="timed calls of detect_emotion")
    parser.add_argument("--errors", action="store_true", help="list the misclassified held-out messages")
    args = parser.parse_args()
    started = time.perf_counter()
    default_classifier()
    fit_ms = (time.perf_counter() - started) * 1000
    metrics, wrong = heldout_metrics()
    print(f"train {len(load_examples(TRAIN_FILE))} / held-out {len(load_examples(HELDOUT_FILE))} messages; "
          f"fit {fit_ms:.0f} ms")
    print("held-out:", json.dumps(metrics.as_dict(), ensure_ascii=False))
    if args.errors:
        for example, score in wrong:
            print(f"  {example.label:>8} → {score.kind:<8} p={score.probability:.2f}  {example.text}")
    texts = [e.text for e in load_examples(HELDOUT_FILE)]
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(args.calls):
            detect_emotion(texts[i % len(texts)])
        runs.append((time.perf_counter() - t0) / args.calls * 1e6)
    print(f"detect_emotion: median {statistics.median(runs):.1f} µs per message over {args.calls} calls × 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
