"""The intent catalogue and its example sets, loaded from YAML under `agent/nlu/data/`.

Intents are data so that adding one is an edit to three files and a retrain, not a code change.
Loading validates the files and names the file and key at fault, because a typo in an intent
name would otherwise silently train a classifier that never predicts it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

from agent.nlu.normalize import normalize_text, normalizer_version

DATA_DIR = Path(__file__).parent / "data"
INTENTS_FILE = DATA_DIR / "intents.yaml"
TRAIN_FILE = DATA_DIR / "train.yaml"
HELDOUT_FILE = DATA_DIR / "heldout.yaml"
# The blind test set: written before the corpus of issue 13 was grown, never trained or tuned on.
# Only `load_blind_set` reads it; `load_dataset` (what every model trains from) never does.
BLIND_FILE = DATA_DIR / "blind_test.yaml"

MIN_TRAIN_EXAMPLES = 150
MIN_HELDOUT_EXAMPLES = 10
MIN_BLIND_EXAMPLES = 25

UNCLEAR = "unclear"  # the label for "no intent is confident enough"


class IntentCategory(StrEnum):
    TASK = "task"
    REPAIR = "repair"
    SOCIAL = "social"
    HANDOFF = "handoff"
    ADVERSARIAL = "adversarial"


@dataclass(frozen=True, slots=True)
class IntentSpec:
    name: str
    description: str  # Chinese, shown to staff and usable in clarification prompts
    category: IntentCategory
    in_scope: bool
    # An intent the dialogue has no flow for yet is served as this existing one (data, in
    # intents.yaml), so that a new intent can be recognised before its flow is written.
    served_as: str | None = None


class IntentDataError(ValueError):
    """A data file is malformed; the message names the file and the key."""


def _read_yaml(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except FileNotFoundError as exc:
        raise IntentDataError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise IntentDataError(f"{path}: not valid YAML: {exc}") from exc


def load_intents(path: Path = INTENTS_FILE) -> dict[str, IntentSpec]:
    raw = _read_yaml(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("intents"), dict):
        raise IntentDataError(f"{path}: expected a mapping under the key 'intents'")
    specs: dict[str, IntentSpec] = {}
    for name, fields in raw["intents"].items():
        where = f"{path}: intents.{name}"
        if name == UNCLEAR:
            raise IntentDataError(f"{where}: '{UNCLEAR}' is reserved for low-confidence results")
        if not isinstance(fields, dict):
            raise IntentDataError(f"{where}: expected a mapping with description, category, in_scope")
        description = fields.get("description")
        if not isinstance(description, str) or not description.strip():
            raise IntentDataError(f"{where}.description: a non-empty Chinese description is required")
        try:
            category = IntentCategory(fields.get("category"))
        except ValueError as exc:
            allowed = ", ".join(c.value for c in IntentCategory)
            raise IntentDataError(f"{where}.category: must be one of {allowed}") from exc
        in_scope = fields.get("in_scope")
        if not isinstance(in_scope, bool):
            raise IntentDataError(f"{where}.in_scope: must be true or false")
        served_as = fields.get("served_as")
        if served_as is not None and not isinstance(served_as, str):
            raise IntentDataError(f"{where}.served_as: must be an intent name")
        specs[str(name)] = IntentSpec(str(name), description.strip(), category, in_scope, served_as)
    for spec in specs.values():
        target = specs.get(spec.served_as) if spec.served_as else None
        if spec.served_as and (target is None or target.served_as):
            raise IntentDataError(
                f"{path}: intents.{spec.name}.served_as: {spec.served_as!r} is not an intent with its own flow"
            )
    return specs


def load_examples(path: Path, intents: dict[str, IntentSpec], minimum: int) -> dict[str, list[str]]:
    """Examples per intent; every catalogued intent needs at least `minimum` distinct lines."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise IntentDataError(f"{path}: expected a mapping of intent name to a list of examples")
    examples: dict[str, list[str]] = {}
    for name, lines in raw.items():
        if name not in intents:
            raise IntentDataError(f"{path}: {name}: not an intent in {INTENTS_FILE.name}")
        if not isinstance(lines, list):
            raise IntentDataError(f"{path}: {name}: expected a list of example strings")
        for index, line in enumerate(lines):
            if not isinstance(line, str) or not line.strip():
                # YAML turns a bare `4` or `no` into a number or a boolean: quote it.
                raise IntentDataError(f"{path}: {name}[{index}]: {line!r} is not a non-empty string")
        distinct = list(dict.fromkeys(line.strip() for line in lines))
        examples[str(name)] = distinct
    for name in intents:
        count = len(examples.get(name, []))
        if count < minimum:
            raise IntentDataError(f"{path}: {name}: {count} distinct examples, at least {minimum} needed")
    return examples


@dataclass(frozen=True)
class IntentDataset:
    intents: dict[str, IntentSpec]
    train: dict[str, list[str]]
    heldout: dict[str, list[str]]

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the catalogue and training data, used as the key of a cached model.

        Computed once per loaded dataset: `get_classifier` asks for it on every turn, and
        re-reading and hashing the data files cost ~1 ms of each turn under load.
        """
        digest = hashlib.sha256()
        for path in (INTENTS_FILE, TRAIN_FILE):
            digest.update(path.read_bytes())
        digest.update(normalizer_version().encode())
        return digest.hexdigest()[:16]

    def labelled(self, split: str) -> list[tuple[str, str]]:
        """(text, intent) pairs of 'train' or 'heldout', in file order."""
        source = self.train if split == "train" else self.heldout
        return [(text, intent) for intent, lines in source.items() for text in lines]


def comparison_key(text: str) -> str:
    """Normalised text without spaces or punctuation: 「停电报修！」 is a copy of 「停电 报修」."""
    return "".join(ch for ch in normalize_text(text).lower() if ch.isalnum())


def load_blind_set(path: Path = BLIND_FILE) -> dict[str, list[str]]:
    """The blind test set, refused if any line copies a training or held-out line.

    For measuring only (benchmarks/bench_nlu.py, tests): nothing that trains a model calls this.
    """
    dataset = load_dataset()
    blind = load_examples(path, dataset.intents, MIN_BLIND_EXAMPLES)
    seen = {comparison_key(text) for split in ("train", "heldout") for text, _ in dataset.labelled(split)}
    for intent, lines in blind.items():
        copied = [line for line in lines if comparison_key(line) in seen]
        if copied:
            raise IntentDataError(f"{path}: {intent}: also in train.yaml or heldout.yaml: {copied[0]!r}")
    return blind


@lru_cache(maxsize=1)
def load_dataset() -> IntentDataset:
    intents = load_intents()
    train = load_examples(TRAIN_FILE, intents, MIN_TRAIN_EXAMPLES)
    heldout = load_examples(HELDOUT_FILE, intents, MIN_HELDOUT_EXAMPLES)
    # Compare normalised text: 「點樣交電費」 is a copy of 「点样交电费」.
    seen = {normalize_text(line) for lines in train.values() for line in lines}
    for intent, lines in heldout.items():
        copied = [line for line in lines if normalize_text(line) in seen]
        if copied:
            raise IntentDataError(f"{HELDOUT_FILE}: {intent}: also in the training set: {copied[0]!r}")
    return IntentDataset(intents, train, heldout)
