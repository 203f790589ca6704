"""Anger and distress in a customer's message: a small classifier trained on hand-labelled examples.

Guide §7.4 wants a negative experience handled when it happens, and an angry or desperate message
is the first sign of one — long before a complaint or a 1-star rating. The labelled messages are
data (`data/emotion_train.yaml`); `data/emotion_heldout.yaml` was written with them, before any
training, and is only ever scored (`heldout_metrics`, `benchmarks/bench_negative_emotion.py`).

Character n-grams (1–3, TF-IDF) and a logistic regression, fitted by scikit-learn once per process
(~217 short messages: tens of milliseconds). Per turn the fitted vocabulary is applied by
`agent.nlu.ngrams.NgramFeatures` (the same arithmetic without scikit-learn's per-call overhead), so
scoring a message costs tens of microseconds, well inside the local turn's 20 ms p95 budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from agent.nlu.ngrams import NgramFeatures
from agent.nlu.normalize import normalize_text

DATA_DIR = Path(__file__).with_name("data")
TRAIN_FILE = DATA_DIR / "emotion_train.yaml"
HELDOUT_FILE = DATA_DIR / "emotion_heldout.yaml"
LABELS = ("anger", "distress", "neutral")
NEGATIVE_LABELS = frozenset({"anger", "distress"})
# Probability of "negative" above which a message counts as angry or distressed: the logistic
# regression's own cut, not tuned on the held-out set (which is only ever scored).
# a false alarm costs an apology and an offer of a person, a miss costs the customer's patience.
THRESHOLD = 0.5
MIN_CHARS = 2  # 「是」「好」: too short to carry a tone


_NO_TONE = re.compile(r"[0-9０-９\s]+")  # numbers (户号, phone tails) carry no tone; 「1391234」 is not anger


def tone_text(text: str) -> str:
    """What the classifier reads: the normalised message without its numbers and spaces."""
    return _NO_TONE.sub("", normalize_text(text)).strip()


class EmotionDataError(ValueError):
    """A labelled-examples file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str

    @property
    def negative(self) -> bool:
        return self.label in NEGATIVE_LABELS


@dataclass(frozen=True)
class EmotionScore:
    """How negative a message sounds: P(anger or distress), and which of the two is likelier."""

    probability: float
    kind: str  # "anger" | "distress" | "neutral"

    @property
    def negative(self) -> bool:
        return self.kind != "neutral"


def load_examples(path: Path) -> list[Example]:
    """The labelled messages of one file; a malformed file is refused naming the file and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EmotionDataError(f"{path.name}: cannot read ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("version") != 1:
        raise EmotionDataError(f"{path.name}: version: must be 1")
    items = raw.get("examples")
    if not isinstance(items, list) or not items:
        raise EmotionDataError(f"{path.name}: examples: must be a non-empty list")
    examples: list[Example] = []
    for index, item in enumerate(items):
        where = f"{path.name}: examples[{index}]"
        if not isinstance(item, dict):
            raise EmotionDataError(f"{where}: must be a mapping with text and label")
        text, label = item.get("text"), item.get("label")
        if not isinstance(text, str) or not text.strip():
            raise EmotionDataError(f"{where}.text: must be a non-empty string")
        if label not in LABELS:
            raise EmotionDataError(f"{where}.label: must be one of {', '.join(LABELS)}, not {label!r}")
        examples.append(Example(text=str(text).strip(), label=str(label)))
    return examples


class EmotionClassifier:
    """Binary negative-vs-neutral logistic regression, plus anger-vs-distress for the cause."""

    def __init__(self, features: NgramFeatures, weights: np.ndarray, intercept: np.ndarray,
                 threshold: float = THRESHOLD) -> None:
        self.features = features
        self.weights = weights  # vocabulary × 2: column 0 negative-vs-neutral, column 1 anger-vs-distress
        self.intercept = intercept
        self.threshold = threshold

    @classmethod
    def fit(cls, examples: list[Example], threshold: float = THRESHOLD) -> EmotionClassifier:
        texts = [tone_text(e.text) for e in examples]
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, norm="l2")
        matrix = vectorizer.fit_transform(texts)
        negative = np.array([e.negative for e in examples])
        polarity = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000).fit(matrix, negative)
        angry_rows = np.flatnonzero(negative)
        kinds = np.array([examples[i].label == "anger" for i in angry_rows])
        kind = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000).fit(matrix[angry_rows], kinds)
        weights = np.stack([polarity.coef_[0], kind.coef_[0]], axis=1).astype(np.float32)
        intercept = np.array([polarity.intercept_[0], kind.intercept_[0]], dtype=np.float32)
        return cls(NgramFeatures.from_vectorizer(vectorizer), weights, intercept, threshold)

    def score(self, text: str) -> EmotionScore:
        """P(negative) of one message and its likelier kind; a very short message is neutral."""
        cleaned = tone_text(text)
        if len(cleaned) < MIN_CHARS:
            return EmotionScore(probability=0.0, kind="neutral")
        logits = self.features.logits(cleaned, self.weights) + self.intercept
        probability = 1.0 / (1.0 + math.exp(-float(logits[0])))
        if probability < self.threshold:
            return EmotionScore(probability=probability, kind="neutral")
        return EmotionScore(probability=probability, kind="anger" if logits[1] >= 0 else "distress")


@lru_cache(maxsize=1)
def default_classifier() -> EmotionClassifier:
    """The classifier fitted on the training file (once per process); refuses overlap with held-out."""
    train = load_examples(TRAIN_FILE)
    heldout = {e.text for e in load_examples(HELDOUT_FILE)}
    overlap = sorted({e.text for e in train} & heldout)
    if overlap:
        raise EmotionDataError(f"{TRAIN_FILE.name}: examples: {len(overlap)} held-out text(s) in the "
                               f"training set, e.g. {overlap[0]!r}")
    return EmotionClassifier.fit(train)


def detect_emotion(text: str) -> EmotionScore:
    """Anger or distress in one customer message (the turn pipeline's call)."""
    return default_classifier().score(text)


@dataclass(frozen=True)
class Metrics:
    """Detection of negative (anger or distress) messages on a labelled set."""

    n: int
    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    kind_correct: int  # of the true positives, how many got the right kind (anger / distress)

    @property
    def precision(self) -> float:
        flagged = self.true_positive + self.false_positive
        return self.true_positive / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        actual = self.true_positive + self.false_negative
        return self.true_positive / actual if actual else 0.0

    @property
    def accuracy(self) -> float:
        return (self.true_positive + self.true_negative) / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "precision": round(self.precision, 3), "recall": round(self.recall, 3),
                "accuracy": round(self.accuracy, 3), "tp": self.true_positive, "fp": self.false_positive,
                "fn": self.false_negative, "tn": self.true_negative, "kind_correct": self.kind_correct}


def evaluate(classifier: EmotionClassifier, examples: list[Example]) -> tuple[Metrics, list[tuple[Example, EmotionScore]]]:
    """Metrics on `examples` and the misclassified ones (for the report)."""
    tp = fp = fn = tn = kind_ok = 0
    wrong: list[tuple[Example, EmotionScore]] = []
    for example in examples:
        result = classifier.score(example.text)
        if result.negative and example.negative:
            tp += 1
            kind_ok += result.kind == example.label
        elif result.negative:
            fp += 1
            wrong.append((example, result))
        elif example.negative:
            fn += 1
            wrong.append((example, result))
        else:
            tn += 1
    return Metrics(len(examples), tp, fp, fn, tn, kind_ok), wrong


def heldout_metrics() -> tuple[Metrics, list[tuple[Example, EmotionScore]]]:
    """The default classifier scored on the held-out file."""
    return evaluate(default_classifier(), load_examples(HELDOUT_FILE))
