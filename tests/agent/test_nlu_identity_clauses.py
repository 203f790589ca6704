"""Clauses that only give an account number or a 4-character tail are classified by pattern."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pytest

from agent.nlu.classifier import IntentClassifier, IntentScore, get_classifier
from agent.nlu.normalize import normalize_text
from agent.nlu.understanding import identity_only, rank_clauses, understand


class CountingClassifier:
    """The real classifier, counting which clauses reach it."""

    def __init__(self, model: IntentClassifier) -> None:
        self.model, self.seen = model, []

    def rank_many(self, texts: Sequence[str], top: int = 5) -> list[list[IntentScore]]:
        self.seen.extend(texts)
        return self.model.rank_many(texts, top)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.model, name)


@pytest.mark.parametrize("text", ["户号440100100001", "我的户号是123456789012", "户号：300012345678",
                                  "户号 4401 0010 0001", "手机号后四位8000", "尾号123X", "身份证后四位123x"])
def test_identity_only_clauses(text: str) -> None:
    assert identity_only(normalize_text(text))


@pytest.mark.parametrize("text", ["查户号440100100001的电费", "户号440100100002的户主姓名", "8000",
                                  "户号4401001000", "帮我看看尾号8000那户", "后四位是多少"])
def test_other_clauses_still_go_to_the_model(text: str) -> None:
    assert not identity_only(normalize_text(text))


def test_identity_clauses_skip_the_model_and_agree_with_it() -> None:
    model = get_classifier()
    counting = CountingClassifier(model)
    clauses = ["户号440100100001", "手机号后四位8000", "查一下5月的电费"]
    rankings = rank_clauses(clauses, counting)  # type: ignore[arg-type]
    assert counting.seen == ["查一下5月的电费"]  # only the question needed an embedding
    assert [r[0].intent for r in rankings[:2]] == ["provide_identity", "provide_identity"]
    for clause in clauses[:2]:  # what the model would have said anyway
        assert model.rank(normalize_text(clause), top=1)[0].intent == "provide_identity"
    assert rankings[2][0].intent == "lookup_bill"


def test_a_whole_identity_message_is_understood_with_its_entities() -> None:
    parsed = understand("户号440100100001，手机号后四位8000", date(2026, 6, 1))
    assert [i.intent for i in parsed.intents] == ["provide_identity"]
    kinds = {type(e).__name__: e for e in parsed.entities}
    assert kinds["AccountNumber"].digits == "440100100001"
    assert kinds["DigitTail"].digits == "8000"
