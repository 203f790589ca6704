"""Split a message into clauses so that 「你好，查下上个月电费，顺便问下怎么交」 yields three intents.

Customers pack several requests into one message, with punctuation (，。；！？), with
connectives (还有, 另外, 顺便, 然后, 对了) or — in ASR transcripts and WeChat — with nothing but
a space. Splitting is conservative: a space splits only between two runs of Chinese words (never
inside 「三零零零 幺二三四」), connectives split only where they do not belong to a phrase
(「还有多少没交」 stays whole), and a lone repair word is kept with what follows, because
「不对，是五月」 is one correction, not a "no" and a "yes".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CLAUSES = 6  # bounds the work per message; the rest stays in the last clause

_PUNCTUATION = re.compile(r"[，,。；;！!？?\n…~～]+|(?<![\d])\.(?!\d)")
_CONNECTIVE = re.compile(
    r"还有(?!没|多少|几|什么|欠|钱|电|一|其他|别的|人|冇)|另外(?!一|的|两|几)|顺便(?:问一下|问下|说一下|说下|帮我)?"
    r"|然后|对了|再就是|再问一下|再问下|以及|同埋"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_NUMERAL_ONLY = re.compile(r"^[\d零〇洞幺一二两三四五六七拐八九勾十百千万Xx\-—]+$")
# A clause made only of one of these is kept with the next clause.
_REPAIR_LEADS = frozenset(
    "不对 不对不对 不是 不是不是 错了 说错了 讲错了 搞错了 口误 更正 纠正 改一下 唔系 唔啱 讲错咗 不好意思 sorry 呃 嗯 哦 那个".split()
)


@dataclass(frozen=True, slots=True)
class Clause:
    text: str
    start: int  # [start, end) in the message
    end: int


def _splits_on_space(left: str, right: str) -> bool:
    """A space separates clauses only between two stretches of Chinese words."""
    left_words, right_words = left.split(), right.split()
    left_word = left_words[-1] if left_words else ""
    right_word = right_words[0] if right_words else ""
    if not left_word or not right_word:
        return False
    if _NUMERAL_ONLY.match(left_word) or _NUMERAL_ONLY.match(right_word):
        return False
    return bool(_CJK.search(left_word[-1])) and bool(_CJK.search(right_word[0]))


def _cut_points(text: str) -> list[tuple[int, int]]:
    """(start, end) of every separator: punctuation, a connective, or a splitting space."""
    cuts: list[tuple[int, int]] = [m.span() for m in _PUNCTUATION.finditer(text)]
    for match in _CONNECTIVE.finditer(text):
        if match.start() > 0:
            cuts.append((match.start(), match.end()))
    for match in re.finditer(r"\s+", text):
        if _splits_on_space(text[: match.start()], text[match.end() :]):
            cuts.append(match.span())
    cuts.sort()
    merged: list[tuple[int, int]] = []
    for start, end in cuts:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _trimmed(text: str, start: int, end: int) -> Clause | None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    offset = start + piece.index(stripped)
    return Clause(stripped, offset, offset + len(stripped))


def _is_lead(text: str) -> bool:
    """Only repair words and one-character fillers (「嗯 那个」, 「不对不对」)."""
    words = [word for word in re.split(r"[\s，,。；;！!？?]+", text) if word]
    return bool(words) and all(word in _REPAIR_LEADS or len(word) == 1 for word in words)


def split_clauses(text: str) -> list[Clause]:
    """The clauses of `text` in order, with their spans; one clause if nothing splits."""
    pieces: list[Clause] = []
    position = 0
    for cut_start, cut_end in _cut_points(text):
        clause = _trimmed(text, position, cut_start)
        if clause is not None:
            pieces.append(clause)
        position = cut_end
    last = _trimmed(text, position, len(text))
    if last is not None:
        pieces.append(last)
    if not pieces:
        return []
    # Keep a lone repair word or a one-character filler with the clause after it.
    joined: list[Clause] = []
    pending: Clause | None = None
    for clause in pieces:
        if pending is not None:
            clause = Clause(text[pending.start : clause.end], pending.start, clause.end)
            pending = None
        if _is_lead(clause.text):
            pending = clause
            continue
        joined.append(clause)
    if pending is not None:
        joined.append(pending)
    if len(joined) > MAX_CLAUSES:
        tail = joined[MAX_CLAUSES - 1]
        rest = Clause(text[tail.start : joined[-1].end], tail.start, joined[-1].end)
        joined = [*joined[: MAX_CLAUSES - 1], rest]
    return joined
