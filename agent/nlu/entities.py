"""Entities a billing-desk customer gives in a message, as typed values with their span.

What the tools need from free text: the 户号 (12 digits in the demo utility), the last four
digits of the registered phone or ID card, a phone number, billing months and "the n latest
bills", amounts (Decimal, never float) and a satisfaction rating. Numbers arrive as digits, as
full-width digits, or as words from hotline ASR (「幺三五」); `numerals.digitise` turns them into
digits first and keeps the position map, so every entity's `start`/`end` index the text it was
extracted from (the normalised message).

Extraction is deliberately literal: it reports what the customer said. Whether an account
number may be used is decided by the tools (authorization lives there), not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from agent.nlu.numerals import DigitisedText, digitise
from agent.nlu.periods import find_months, find_recent

ACCOUNT_NUMBER_DIGITS = 12  # the demo utility's 户号 length


@dataclass(frozen=True, slots=True)
class Entity:
    """Common to all entities: the matched text and its [start, end) span."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AccountNumber(Entity):
    digits: str


@dataclass(frozen=True, slots=True)
class PhoneNumber(Entity):
    digits: str


@dataclass(frozen=True, slots=True)
class IdCardNumber(Entity):
    digits: str  # 18 characters, the last may be X


TailKind = Literal["phone", "id", "unspecified"]


@dataclass(frozen=True, slots=True)
class DigitTail(Entity):
    """「尾号1234」「身份证后四位123X」: the verification digits."""

    digits: str
    kind: TailKind


@dataclass(frozen=True, slots=True)
class DigitSequence(Entity):
    """Digits that fit no other entity; useful when the dialogue awaits a number."""

    digits: str


@dataclass(frozen=True, slots=True)
class BillingMonth(Entity):
    year: int
    month: int
    relative: bool = False  # named as 「这个月」「上个月」 rather than 「5月」

    @property
    def period(self) -> str:
        """The bill contract's period key, YYYY-MM."""
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class RecentBills(Entity):
    """「最近3个月」「前三个月」: the `count` latest bills."""

    count: int


@dataclass(frozen=True, slots=True)
class Amount(Entity):
    value: Decimal  # yuan


@dataclass(frozen=True, slots=True)
class Energy(Entity):
    """「用了三百五十度电」: a consumption figure the customer states, in kWh."""

    kwh: Decimal


class SatisfactionLevel(StrEnum):
    SATISFIED = "satisfied"  # 满意
    NEUTRAL = "neutral"  # 一般
    DISSATISFIED = "dissatisfied"  # 不满意


@dataclass(frozen=True, slots=True)
class SatisfactionRating(Entity):
    level: SatisfactionLevel
    score: int | None  # 1–5: the number given, or the scale's word (非常满意 5 … 非常不满意 1); None if vague


# ---- patterns (on digitised text) ------------------------------------------------------------

_AMOUNT = re.compile(
    r"(?:(?P<sign>[¥￥])\s*(?P<bare>\d+(?:\.\d{1,2})?)(?!\d)(?:\s*元)?)"
    r"|(?<![\d.])(?P<yuan>\d+(?:\.\d{1,2})?)\s*(?P<unit>元|块钱|块|蚊)"
    r"(?:\s*(?P<jiao>\d)\s*[角毛])?(?:\s*(?P<fen>\d)\s*分)?(?:(?P<tail>\d)(?![\d角毛分.]))?"
    r"|(?<![\d.])(?P<jiao_only>\d)\s*[角毛](?:\s*(?P<fen_only>\d)\s*分)?"
)
# 度 is also degrees Celsius: not after 开/调到/温度/气温/摄氏 (「空调开26度」).
_ENERGY = re.compile(
    r"(?<![\d.])(?<!开)(?<!调到)(?<!温度)(?<!气温)(?<!摄氏)(?<!温)(\d+(?:\.\d+)?)\s*(?:度电?|千瓦时|kwh|kWh|KWH)"
)
_DIGIT_GROUP = re.compile(r"(?<![\dA-Za-z])\d(?:[ \-—]{0,2}\d)*(?:[ \-—]?[Xx])?(?![\dA-Za-z])")
_TAIL_CUE = re.compile(r"(?:尾号|尾数|尾码|末4位|末四位|后4位|后四位|最后4位|最后四位|后4个|后四个)[是为系:：\s]*$")
_ID_CUE = re.compile(r"身份证|证件|身份")
_PHONE_CUE = re.compile(r"手机|电话|号码|预留")

_SCORE = re.compile(r"(?<![\d.])([1-5])\s*(?:分(?!钟)|颗星|星)")
_FULL_MARKS = re.compile(r"满分|五星|5星")
_RATING_WORDS: tuple[tuple[re.Pattern[str], SatisfactionLevel], ...] = (
    (
        re.compile(r"非常不满意?|很不满意?|不太满意|不满意|唔满意|不是很满意|差评|不咋地|好差"),
        SatisfactionLevel.DISSATISFIED,
    ),
    (
        re.compile(r"(?:一般般|一般|还行|凑合|马马虎虎|麻麻地|中评)(?=$|[\s，。！？,.!?~…]|[吧啦啊呀咯嘅喔了的])"),
        SatisfactionLevel.NEUTRAL,
    ),
    (re.compile(r"非常满意|很满意|挺满意|好满意|几满意|还算满意|满意(?!度)|好评"), SatisfactionLevel.SATISFIED),
)
_RATING_CUES = re.compile(r"服务|评价|评分|打分|满意度|感觉|觉得|给你|打个|给个")
_CLAUSE_BREAK = re.compile(r"[，。！？；,.!?;\n]")
_BARE_SCORE = re.compile(r"^\s*(?:打|给|评)?\s*([1-5])\s*[。.!！]?\s*$")


# The 1–5 scale's words (templates.yaml ask_csat, the web widget): the strong forms first.
_WORD_SCORES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^(?:非常不满意?|很不满意?|好差|差评)$"), 1),
    (re.compile(r"^(?:不满意|不太满意|唔满意|不是很满意|不咋地)$"), 2),
    (re.compile(r"^(?:非常满意|很满意|好满意)$"), 5),
    (re.compile(r"^(?:满意|挺满意|几满意|还算满意|好评)$"), 4),
)


def _word_score(word: str, level: SatisfactionLevel) -> int | None:
    if level == SatisfactionLevel.NEUTRAL:
        return 3
    for pattern, score in _WORD_SCORES:
        if pattern.match(word):
            return score
    return None


def _level_for_score(score: int) -> SatisfactionLevel:
    if score >= 4:
        return SatisfactionLevel.SATISFIED
    return SatisfactionLevel.NEUTRAL if score == 3 else SatisfactionLevel.DISSATISFIED


class _Claims:
    """Spans of the digitised text already used by an entity, so patterns do not double-count."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in self._spans)

    def take(self, start: int, end: int) -> None:
        self._spans.append((start, end))


def _span(digitised: DigitisedText, source: str, start: int, end: int) -> tuple[str, int, int]:
    s_start, s_end = digitised.source_span(start, end)
    return source[s_start:s_end], s_start, s_end


def _amount_value(match: re.Match[str]) -> Decimal:
    if match.group("bare") is not None:
        return Decimal(match.group("bare"))
    if match.group("jiao_only") is not None:
        return Decimal(match.group("jiao_only")) / 10 + Decimal(match.group("fen_only") or 0) / 100
    value = Decimal(match.group("yuan"))
    if match.group("jiao"):
        value += Decimal(match.group("jiao")) / 10
    if match.group("fen"):
        value += Decimal(match.group("fen")) / 100
    if match.group("tail") and not match.group("jiao") and match.group("unit") in ("块", "蚊"):
        value += Decimal(match.group("tail")) / 10  # 「三块五」 = 3.5 元
    return value


def _find_amounts(dt: DigitisedText, source: str, claims: _Claims) -> list[Entity]:
    found: list[Entity] = []
    for match in _AMOUNT.finditer(dt.text):
        start, end = match.span()
        if match.group("tail") and match.group("unit") not in ("块", "蚊"):
            end = match.start("tail")  # 「200元5月」: the 5 belongs to the month
        if not claims.free(start, end):
            continue
        claims.take(start, end)
        found.append(Amount(*_span(dt, source, start, end), value=_amount_value(match)))
    return found


def _find_energy(dt: DigitisedText, source: str, claims: _Claims) -> list[Entity]:
    found: list[Entity] = []
    for match in _ENERGY.finditer(dt.text):
        if claims.free(*match.span()):
            claims.take(*match.span())
            found.append(Energy(*_span(dt, source, *match.span()), kwh=Decimal(match.group(1))))
    return found


def _find_periods(dt: DigitisedText, source: str, today: date, claims: _Claims) -> list[Entity]:
    found: list[Entity] = []
    for recent in find_recent(dt.text):
        if claims.free(recent.start, recent.end):
            claims.take(recent.start, recent.end)
            found.append(RecentBills(*_span(dt, source, recent.start, recent.end), count=recent.count))
    for month in find_months(dt.text, today):
        if claims.free(month.start, month.end):
            claims.take(month.start, month.end)
            found.append(BillingMonth(*_span(dt, source, month.start, month.end), month.year, month.month,
                                      month.relative))
    return found


def _find_ratings(dt: DigitisedText, source: str, claims: _Claims) -> list[Entity]:
    found: list[Entity] = []
    for match in _SCORE.finditer(dt.text):
        if claims.free(*match.span()):
            claims.take(*match.span())
            score = int(match.group(1))
            found.append(
                SatisfactionRating(*_span(dt, source, *match.span()), _level_for_score(score), score)
            )
    for match in _FULL_MARKS.finditer(dt.text):
        if claims.free(*match.span()):
            claims.take(*match.span())
            span = _span(dt, source, *match.span())
            found.append(SatisfactionRating(*span, SatisfactionLevel.SATISFIED, 5))
    bare = _BARE_SCORE.match(dt.text)
    if bare and claims.free(*bare.span(1)):
        claims.take(*bare.span(1))
        score = int(bare.group(1))
        found.append(SatisfactionRating(*_span(dt, source, *bare.span(1)), _level_for_score(score), score))
    # A word like 一般 is a rating only in a short clause or next to a rating cue
    # (「服务一般」 yes, 「一般几号出账单」 no).
    position = 0
    for clause in _CLAUSE_BREAK.split(dt.text):
        short_or_cued = len(clause.strip()) <= 10 or _RATING_CUES.search(clause) is not None
        if short_or_cued:
            for pattern, level in _RATING_WORDS:
                for match in pattern.finditer(clause):
                    start, end = position + match.start(), position + match.end()
                    if claims.free(start, end):
                        claims.take(start, end)
                        found.append(SatisfactionRating(*_span(dt, source, start, end), level,
                                                        _word_score(match.group(0), level)))
        position += len(clause) + 1
    return found


def _tail_kind(before: str, digits: str) -> TailKind:
    if digits.endswith("X") or _ID_CUE.search(before):
        return "id"
    if _PHONE_CUE.search(before):
        return "phone"
    return "unspecified"


def _find_numbers(dt: DigitisedText, source: str, claims: _Claims) -> list[Entity]:
    found: list[Entity] = []
    for match in _DIGIT_GROUP.finditer(dt.text):
        start, end = match.span()
        if not claims.free(start, end):
            continue
        digits = re.sub(r"[^\dXx]", "", match.group(0)).upper()
        before = dt.text[max(0, start - 12) : start]
        text, s_start, s_end = _span(dt, source, start, end)
        entity: Entity | None = None
        if _TAIL_CUE.search(before) and len(digits) == 4:
            entity = DigitTail(text, s_start, s_end, digits, _tail_kind(before, digits))
        elif len(digits) == 4 and digits.endswith("X"):
            entity = DigitTail(text, s_start, s_end, digits, "id")
        elif digits.isdigit() and len(digits) == ACCOUNT_NUMBER_DIGITS:
            entity = AccountNumber(text, s_start, s_end, digits)
        elif digits.isdigit() and len(digits) == 11 and digits.startswith("1"):
            entity = PhoneNumber(text, s_start, s_end, digits)
        elif len(digits) == 18 and digits[:17].isdigit():
            entity = IdCardNumber(text, s_start, s_end, digits)
        elif digits.isdigit() and len(digits) >= 3:
            entity = DigitSequence(text, s_start, s_end, digits)
        if entity is not None:
            claims.take(start, end)
            found.append(entity)
    return found


def extract_entities(text: str, today: date) -> list[Entity]:
    """All entities in `text` (already normalised), ordered by position.

    Order of claims matters: months and amounts first (「2026-05」 and 「123.45元」 contain digits
    that are not identifiers), then ratings, then the remaining digit groups.
    """
    dt = digitise(text)
    claims = _Claims()
    entities: list[Entity] = []
    entities += _find_periods(dt, text, today, claims)
    entities += _find_amounts(dt, text, claims)
    entities += _find_energy(dt, text, claims)
    entities += _find_ratings(dt, text, claims)
    entities += _find_numbers(dt, text, claims)
    return sorted(entities, key=lambda e: (e.start, e.end))
