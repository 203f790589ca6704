"""Text normalisation before intent classification and entity extraction.

Customers write in Traditional or Simplified characters, type full-width digits on phone
keyboards, and hotline ASR spells domain words with homophones (「点费」 for 电费). Folding these
variants here lets the classifier and the entity patterns see one spelling.

The knowledge base has its own, stronger query normaliser (`knowledge_base.normalize`), but it
rewrites dialect phrases into longer Mandarin and so moves positions. NLU needs spans that line
up with the customer's message character by character, so this module reuses only the
same-length typo/homophone pairs of that table (`TYPO_FORMS`) plus a few of its own, and keeps
every character a character.
"""

from __future__ import annotations

import re
from functools import lru_cache

import opencc

from knowledge_base.normalize import TYPO_FORMS as KB_TYPO_FORMS

# Full-width ASCII digits, letters and the separators used in numbers and dates (２０２６－０５),
# folded to half-width. Chinese punctuation (，。？！) is kept: the clause splitter reads it.
_FULL_WIDTH = {chr(code): chr(code - 0xFEE0) for code in range(0xFF10, 0xFF1A)}
_FULL_WIDTH.update({chr(code): chr(code - 0xFEE0) for code in range(0xFF21, 0xFF3B)})
_FULL_WIDTH.update({chr(code): chr(code - 0xFEE0) for code in range(0xFF41, 0xFF5B)})
_FULL_WIDTH.update({"－": "-", "／": "/", "．": ".", "＋": "+", "＃": "#", "　": " ", "〇": "零"})
_FULL_WIDTH_TABLE = str.maketrans(_FULL_WIDTH)

# Homophones that hotline ASR and hurried typing produce for billing-desk words, as
# (pattern, replacement) with replacements of the same length, so positions do not move.
# Only domain-specific pairs belong here; a look-behind keeps 「多一点费用」 intact.
ASR_HOMOPHONES: tuple[tuple[str, str], ...] = (
    (r"(?<![一有些差])点费", "电费"),
    (r"店费|垫费|电废", "电费"),
    (r"帐单|仗单", "账单"),
    (r"互号|护号|户好", "户号"),
    (r"缴废|叫费", "缴费"),
    (r"叫电费", "交电费"),
    (r"转人公", "转人工"),
    (r"投苏|头诉", "投诉"),
    (r"违约今", "违约金"),
)
_RISKY_TYPOS = frozenset({"退不"})  # 「能退不能退」 is not 「退补」
# The knowledge base's typo table, where a pair keeps the length (「店费」→「电费」, 「亭电」→「停电」).
SHARED_TYPOS: tuple[tuple[str, str], ...] = tuple(
    (re.escape(wrong), right)
    for wrong, right in KB_TYPO_FORMS
    if len(wrong) == len(right) and wrong != right and wrong not in _RISKY_TYPOS
)
_HOMOPHONES = tuple(
    (re.compile(pattern), replacement) for pattern, replacement in ASR_HOMOPHONES + SHARED_TYPOS
)


def normalizer_version() -> str:
    """Changes with the normalisation tables, so a model cached from old text is not reused."""
    return repr((sorted(_FULL_WIDTH.items()), ASR_HOMOPHONES, SHARED_TYPOS))


@lru_cache(maxsize=1)
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _same_length_t2s(text: str) -> str:
    """Traditional → Simplified, kept only where it preserves length (it nearly always does)."""
    converted = _to_simplified().convert(text)
    if len(converted) == len(text):
        return converted
    # Rare phrase-level conversions change length; fall back to character by character.
    return "".join(ch2 if len(ch2 := _to_simplified().convert(ch)) == 1 else ch for ch in text)


@lru_cache(maxsize=4096)
def normalize_text(text: str) -> str:
    """Fold full-width forms, Traditional characters and known ASR homophones; strip the ends.

    Letters keep their case (an ID tail ends in X); the classifier lower-cases on its own.
    """
    folded = text.translate(_FULL_WIDTH_TABLE)
    folded = _same_length_t2s(folded)
    for pattern, replacement in _HOMOPHONES:
        folded = pattern.sub(replacement, folded)
    return folded.strip()
