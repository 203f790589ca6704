"""`understand()`: one customer message → intents, entities and the normalised text.

This is the whole NLU step of the local brain's turn: normalise once, split into clauses,
classify all clauses in one embedding batch, extract entities from the whole message. The
dialogue engine decides what to do; this module only reports what was said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from agent.nlu.classifier import IntentClassifier, IntentScore, get_classifier
from agent.nlu.clauses import split_clauses
from agent.nlu.entities import Entity, extract_entities
from agent.nlu.intent_data import UNCLEAR, IntentCategory, IntentSpec, load_dataset
from agent.nlu.normalize import normalize_text
from agent.nlu.third_party import check_ownership

MAX_MESSAGE_CHARS = 2000  # channels cut earlier; beyond this a message is not a chat turn
# A clause is "sure" when its top probability reaches this (`ClauseIntent.is_sure`). The model's
# probabilities are calibrated on unseen text without rescaling (blind set: expected calibration
# error 0.03; temperature scaling fitted on the held-out set made them worse), and the threshold
# was chosen on 5-fold out-of-fold predictions of the training set: see SURE_* in bench_nlu.py.
# Below it the dialogue should ask, offering `Understanding.candidates()`, not act or hand off.
SURE_PROBABILITY = 0.8
# Sending a customer to another desk ends the conversation, while a wrong guess answered by a
# clarifying question costs one turn: an out-of-scope intent is handed off only above this higher
# bar. Plain reports (「我家停电了」「我要报装」) score ≥ 0.99 with the calibrated SVM head; vague
# openings and story clauses (「那个电的事情我想问问」, 「家里也没添什么电器」) ~0.85.
OUT_OF_SCOPE_SURE = 0.95

EntityT = TypeVar("EntityT", bound=Entity)


@dataclass(frozen=True, slots=True)
class ClauseIntent:
    """One clause of the message and how it was classified."""

    text: str
    start: int  # [start, end) in Understanding.normalized_text
    end: int
    intent: str  # an intent name, or "unclear" below the confidence floor
    ranking: tuple[IntentScore, ...]  # best first, probabilities

    @property
    def confidence(self) -> float:
        return self.ranking[0].score if self.ranking else 0.0

    @property
    def is_sure(self) -> bool:
        return self.confidence >= SURE_PROBABILITY


@dataclass(frozen=True, slots=True)
class Understanding:
    text: str  # the message as received
    normalized_text: str  # what classification and entity spans refer to
    intents: tuple[IntentScore, ...]  # distinct confident intents, in the order they were said
    clauses: tuple[ClauseIntent, ...]
    entities: tuple[Entity, ...]

    @property
    def primary_intent(self) -> str:
        """The first confident intent, or "unclear" when none was confident."""
        return self.intents[0].intent if self.intents else UNCLEAR

    @property
    def confidence(self) -> float:
        """How sure the weakest reported intent is (the best clause's score if none was confident).

        The hotline asks a confirmation question when this is low.
        """
        if self.intents:
            return min(score.score for score in self.intents)
        return max((clause.confidence for clause in self.clauses), default=0.0)

    @property
    def intent_names(self) -> list[str]:
        return [score.intent for score in self.intents]

    def has_intent(self, name: str) -> bool:
        return any(score.intent == name for score in self.intents)

    def candidates(self, k: int = 3) -> tuple[IntentScore, ...]:
        """The `k` likeliest intents of the message with their probabilities, best first.

        For a clarifying question: each intent scores its best clause. With several clauses, ask
        about `unsure_clauses` only, offering each one's own `ranking[:k]`.
        """
        best: dict[str, float] = {}
        for clause in self.clauses:
            for score in clause.ranking:
                best[score.intent] = max(best.get(score.intent, 0.0), score.score)
        ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)[:k]
        return tuple(IntentScore(name, score) for name, score in ranked)

    @property
    def unsure_clauses(self) -> tuple[ClauseIntent, ...]:
        """Clauses whose best intent is not sure (probability below SURE_PROBABILITY)."""
        return tuple(clause for clause in self.clauses if not clause.is_sure)

    @property
    def is_unsure(self) -> bool:
        """True when some clause is not understood with confidence: ask rather than act or hand off."""
        return bool(self.unsure_clauses)

    def out_of_scope_is_sure(self) -> bool:
        """An out-of-scope intent was reported and its own clause is sure of it (OUT_OF_SCOPE_SURE).

        Hand off as out of scope only then; an unsure out-of-scope guess deserves a question.
        """
        catalogue = load_dataset().intents
        return any(
            clause.intent in catalogue and not catalogue[clause.intent].in_scope
            and clause.confidence >= OUT_OF_SCOPE_SURE
            for clause in self.clauses
        )

    @property
    def is_adversarial(self) -> bool:
        """True if any clause is a prompt injection or a request about someone else's account."""
        catalogue = load_dataset().intents
        return any(
            catalogue[s.intent].category is IntentCategory.ADVERSARIAL
            for s in self.intents
            if s.intent in catalogue
        )

    def entities_of(self, kind: type[EntityT]) -> list[EntityT]:
        return [entity for entity in self.entities if isinstance(entity, kind)]

    def first(self, kind: type[EntityT]) -> EntityT | None:
        found = self.entities_of(kind)
        return found[0] if found else None


def intent_catalogue() -> dict[str, IntentSpec]:
    """Every intent the local brain knows, with its Chinese description and category."""
    return dict(load_dataset().intents)


def _distinct_in_order(clauses: Sequence[ClauseIntent]) -> tuple[IntentScore, ...]:
    best: dict[str, float] = {}
    for clause in clauses:
        if clause.intent != UNCLEAR:
            best[clause.intent] = max(best.get(clause.intent, 0.0), clause.confidence)
    return tuple(IntentScore(name, score) for name, score in best.items())


# A clause that is nothing but an account number or a 4-character tail (「户号440100100001」,
# 「手机号后四位8000」) gives identity data, whoever's it is: the tools decide that. Answered by this
# pattern rather than the model, because each customer's own digits made it a fresh embedding
# (~5 ms) that no cache could share — the largest NLU cost when every conversation is a new customer.
_IDENTITY_ONLY = re.compile(
    r"(?:我的|我家)?(?:用电)?户号(?:是|为|[:：])?[0-9]{12}"
    r"|(?:户主)?(?:手机号?码?|身份证号?码?)?(?:后四位|后4位|尾号)(?:是|为|[:：])?[0-9]{3}[0-9Xx]"
)
PROVIDE_IDENTITY = "provide_identity"


def identity_only(text: str) -> bool:
    """Is this normalised clause just an account number or a 4-character tail?"""
    return _IDENTITY_ONLY.fullmatch(re.sub(r"\s+", "", text)) is not None


def rank_clauses(texts: Sequence[str], classifier: IntentClassifier | None = None) -> list[list[IntentScore]]:
    """Rankings of normalised clauses: the classifier, then the whose-account check."""
    model = classifier or get_classifier()
    by_pattern = [identity_only(text) for text in texts]
    by_model = [text for text, matched in zip(texts, by_pattern, strict=True) if not matched]
    ranked = iter(model.rank_many(by_model) if by_model else [])
    rankings = [[IntentScore(PROVIDE_IDENTITY, 1.0)] if matched else next(ranked) for matched in by_pattern]
    return [check_ownership(text, ranking) for text, ranking in zip(texts, rankings, strict=True)]


def understand(text: str, today: date, classifier: IntentClassifier | None = None) -> Understanding:
    """Intents, entities and normalised text of one message; `today` resolves 「上个月」 etc."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a string, got {type(text).__name__}")
    if not isinstance(today, date):
        raise TypeError(f"today: expected a datetime.date, got {type(today).__name__}")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValueError(f"text: {len(text)} characters, at most {MAX_MESSAGE_CHARS} per message")
    normalized = normalize_text(text)
    clauses = split_clauses(normalized)
    classified: list[ClauseIntent] = []
    if clauses:
        model = classifier or get_classifier()
        rankings = rank_clauses([clause.text for clause in clauses], model)
        for clause, ranking in zip(clauses, rankings, strict=True):
            classified.append(
                ClauseIntent(clause.text, clause.start, clause.end, model.decide(ranking), tuple(ranking))
            )
    return Understanding(
        text=text,
        normalized_text=normalized,
        intents=_distinct_in_order(classified),
        clauses=tuple(classified),
        entities=tuple(extract_entities(normalized, today)),
    )
