"""The blind test set (agent/nlu/data/blind_test.yaml): separate from training, and how well it is understood.

It was written before the corpus of issue 13 was grown; it is only worth something while no model
ever trains on it and no training line copies it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import agent.nlu.intent_data as intent_data
from agent.nlu import get_classifier
from agent.nlu.intent_data import (
    BLIND_FILE,
    MIN_BLIND_EXAMPLES,
    IntentDataError,
    comparison_key,
    load_blind_set,
    load_dataset,
)
from agent.nlu.normalize import normalize_text
from agent.nlu.understanding import rank_clauses

# Issue 13's verbatim messages must stay in the blind set (and so out of training).
ISSUE_MESSAGES = {
    "open_dispute": "10月份那张账单，电表读数不对，我家根本没用那么多电",
    "payment_arrangement": "能不能分期交？",
    "policy_question": "可以开增值税专用发票吗",
    "query_contact_info": "我登记的手机号是多少？地址呢？",
    "explain_bill": "这个月电费为什么这么高",
    "payment_status": "电费交了没有",
    "saving_advice": "怎么省电费",  # issue 16
    "usage_check": "我家用电是不是不正常",
}


def test_blind_set_covers_every_intent_and_the_issue_messages() -> None:
    blind = load_blind_set()
    assert set(blind) == set(load_dataset().intents)
    assert min(len(lines) for lines in blind.values()) >= MIN_BLIND_EXAMPLES
    for intent, message in ISSUE_MESSAGES.items():
        assert message in blind[intent], (intent, message)
    # Long rambling messages are part of it, not only short phrases.
    assert sum(len(line) >= 80 for lines in blind.values() for line in lines) >= 12


def test_no_blind_line_is_a_training_or_heldout_line_even_without_punctuation() -> None:
    dataset = load_dataset()
    seen = {comparison_key(text) for split in ("train", "heldout") for text, _ in dataset.labelled(split)}
    copied = [line for lines in load_blind_set().values() for line in lines if comparison_key(line) in seen]
    assert copied == []


def test_the_training_loader_never_reads_the_blind_file(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[Path] = []
    original = intent_data._read_yaml

    def recording(path: Path) -> object:
        read.append(Path(path))
        return original(path)

    monkeypatch.setattr(intent_data, "_read_yaml", recording)
    dataset = intent_data.load_dataset.__wrapped__()  # bypass the cache: really load
    assert read and BLIND_FILE not in read
    blind = {comparison_key(line) for lines in load_blind_set().values() for line in lines}
    assert not blind & {comparison_key(text) for text, _ in dataset.labelled("train")}


def test_a_blind_line_copied_into_training_is_refused(tmp_path: Path) -> None:
    train_line = load_dataset().labelled("train")[0][0]
    path = tmp_path / "blind.yaml"
    blind = load_blind_set()
    blind["greeting"] = [*blind["greeting"], f"{train_line}！"]
    import yaml

    path.write_text(yaml.safe_dump(blind, allow_unicode=True), encoding="utf-8")
    with pytest.raises(IntentDataError, match="also in train.yaml"):
        load_blind_set(path)


def test_blind_set_accuracy() -> None:
    """Measured like the held-out set: each message whole, classifier then the whose-account check."""
    pairs = [(text, intent) for intent, lines in load_blind_set().items() for text in lines]
    rankings = rank_clauses([normalize_text(text) for text, _ in pairs], get_classifier())
    misses = [(text, gold, r[0].intent) for (text, gold), r in zip(pairs, rankings, strict=True) if r[0].intent != gold]
    accuracy = 1 - len(misses) / len(pairs)
    assert accuracy >= 0.95, f"blind-set accuracy {accuracy:.3f}; misses: {misses}"
    assert max(Counter(gold for _, gold, _ in misses).values(), default=0) <= 4, misses
