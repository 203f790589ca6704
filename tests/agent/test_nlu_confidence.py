"""Confidence for a dialogue that asks instead of guessing: top-k candidates and "sure"."""

from __future__ import annotations

from datetime import date

import pytest

from agent.nlu import IntentClassifier, get_classifier, understand
from agent.nlu.intent_data import load_blind_set
from agent.nlu.normalize import normalize_text
from agent.nlu.understanding import SURE_PROBABILITY, rank_clauses

TODAY = date(2026, 6, 15)


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return get_classifier()


def test_candidates_offer_the_likeliest_intents_best_first() -> None:
    result = understand("那个电费的事我想问问", TODAY)
    candidates = result.candidates(3)
    assert len(candidates) == 3 and len({c.intent for c in candidates}) == 3
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-6
    assert candidates[0].score == max(clause.confidence for clause in result.clauses)


def test_a_message_of_two_clauses_offers_both_tasks() -> None:
    result = understand("帮我查下电费还有怎么交", TODAY)
    assert {c.intent for c in result.candidates(2)} == {"lookup_bill", "how_to_pay"}
    assert not result.is_unsure and result.unsure_clauses == ()


def test_clear_requests_are_sure_and_a_sure_outage_is_out_of_scope() -> None:
    for text in ["转人工", "我要查上个月电费", "我家停电了"]:
        assert not understand(text, TODAY).is_unsure, text
    assert understand("我家停电了", TODAY).out_of_scope_is_sure()
    assert not understand("我要查上个月电费", TODAY).out_of_scope_is_sure()


def test_noise_is_unsure_and_never_out_of_scope() -> None:
    result = understand("asdkjh qwe", TODAY)
    assert result.is_unsure and not result.out_of_scope_is_sure()


def test_sure_means_right_on_the_blind_set(classifier: IntentClassifier) -> None:
    """The threshold was chosen on out-of-fold training predictions; it holds on unseen messages."""
    pairs = [(text, intent) for intent, lines in load_blind_set().items() for text in lines]
    rankings = rank_clauses([normalize_text(text) for text, _ in pairs], classifier)
    sure = [r[0].intent == gold for r, (_, gold) in zip(rankings, pairs, strict=True) if r[0].score >= SURE_PROBABILITY]
    assert len(sure) / len(pairs) >= 0.8, len(sure) / len(pairs)
    assert sum(sure) / len(sure) >= 0.98, sum(sure) / len(sure)
