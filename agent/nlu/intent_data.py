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

MIN_TRAIN_EXAMPLES = 40
MIN_HELDOUT_EXAMPLES = 10

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
        specs[str(name)] = IntentSpec(str(name), description.strip(), category, in_scope)
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
