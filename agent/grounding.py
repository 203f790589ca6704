"""The grounding guard: every figure a customer reads must come from somewhere we can point to.

A reply (from either brain) is scanned for amounts (元/块/角/分, Arabic or Chinese numerals),
kWh figures, dates and months, percentages, ticket numbers and any other multi-digit number.
Each one is normalised (242.55 / 242.55元 / 二百四十二元五角五分 → one form) and must be
found in the evidence of the turn: tool results, cited knowledge-base passages, the user's own
messages and the fixed service constants of the policy (95598 …). Anything unbacked is a
violation; the dialogue engine then regenerates (LLM brain) or falls back to a safe template.

Phone and ID numbers are masked in every reply, whatever the brain, so a customer's personal
numbers never leave the system in full even when they are "grounded"
(`knowledge_base.personal_numbers`, the patterns the logs use too).
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import cn2an

# Re-exported: the agent and its graph mask replies and records through the guard.
from knowledge_base.personal_numbers import mask_personal_numbers as mask_personal_numbers

# ---------------------------------------------------------------- facts


class FactKind(str, Enum):
    MONEY = "money"
    KWH = "kwh"
    DATE = "date"
    MONTH = "month"
    PERCENT = "percent"
    TICKET = "ticket"
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Fact:
    """One figure found in a text: its kind, normalised value and the words it was written as."""

    kind: FactKind
    value: str
    text: str


_CN_DIGITS = "零〇一二两三四五六七八九十百千万亿幺"
_CN_NUM = f"[{_CN_DIGITS}]+"
_NUM = r"[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?"

_TICKET = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2,4}[0-9]{8,})(?![0-9])")
_ISO_DATE = re.compile(r"(?<![0-9])(20[0-9]{2})[-/.]([01]?[0-9])[-/.]([0-3]?[0-9])(?![0-9])")
_CN_DATE = re.compile(r"(?:(20[0-9]{2})\s*年\s*)?([01]?[0-9])\s*月\s*([0-3]?[0-9])\s*[日号]")
_ISO_MONTH = re.compile(r"(?<![0-9])(20[0-9]{2})-([01][0-9])(?![0-9-])")
_CN_MONTH = re.compile(r"(?:(20[0-9]{2})\s*年\s*)?([01]?[0-9])\s*月(?!\s*[0-9]+\s*[日号])(?!份?[0-9])")
_CN_WORD_MONTH = re.compile(r"(?<![零〇一二两三四五六七八九十百千万])(十[一二]|[一二三四五六七八九十])月(?![0-9一二三四五六七八九十]+[日号])")
_YEAR = re.compile(r"(?<![0-9])(20[0-9]{2})\s*年(?!\s*[0-9]{1,2}\s*月)")
_PERCENT = re.compile(rf"({_NUM})\s*[%％]|百分之({_CN_NUM}(?:点{_CN_NUM})?)")
_KWH = re.compile(rf"({_NUM}|{_CN_NUM}(?:点{_CN_NUM})?)\s*(?:千瓦时|kWh|kwh|KWH|度)(?!量)")
_MONEY_ARABIC = re.compile(
    rf"[¥￥]\s*({_NUM})|({_NUM})\s*(?:元|块)(?:\s*([0-9])\s*角)?(?:\s*([0-9])\s*分)?"
    rf"|({_NUM})\s*角(?:\s*([0-9])\s*分)?|(?<![0-9.])([0-9])\s*分钱"
)
_MONEY_CN = re.compile(
    rf"({_CN_NUM}(?:点{_CN_NUM})?)(?:元|块)(?:([{_CN_DIGITS}])角|([一二两三四五六七八九])(?![角分{_CN_DIGITS}]))?"
    rf"(?:([{_CN_DIGITS}])分)?|([一二两三四五六七八九])角(?:([{_CN_DIGITS}])分)?"
)
_BARE_NUMBER = re.compile(r"(?<![0-9.*A-Za-z])([0-9]+(?:\.[0-9]+)?)(?![0-9*])")


def _cn_to_decimal(text: str) -> Decimal:
    """Chinese numerals (二百四十二, 幺三五, 二点五) to a Decimal."""
    text = text.replace("幺", "一").replace("〇", "零")
    value = cn2an.cn2an(text, "smart")
    return Decimal(str(value))


def _to_decimal(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def canonical_number(value: Decimal | int | float | str) -> str:
    """One spelling per number: 242.50 → '242.5', 300.000 → '300'."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    normalized = number.normalize()
    text = format(normalized, "f")
    return text


def _digit(text: str | None) -> Decimal:
    if not text:
        return Decimal("0")
    return Decimal(text) if text.isdigit() else _cn_to_decimal(text)


class _Scanner:
    """Collects facts while blanking what it consumed, so a figure is counted once."""

    def __init__(self, text: str) -> None:
        self.rest = text
        self.facts: list[Fact] = []

    def take(self, pattern: re.Pattern[str], build: Any) -> None:
        def replace(match: re.Match[str]) -> str:
            try:
                fact = build(match)
            except (InvalidOperation, ValueError, KeyError, TypeError):
                return match.group(0)
            if fact is None:
                return match.group(0)
            for item in fact if isinstance(fact, list) else [fact]:
                self.facts.append(item)
            return " " * len(match.group(0))

        self.rest = pattern.sub(replace, self.rest)


def _month(year: str | None, month: int) -> Fact | None:
    if not 1 <= month <= 12:
        return None
    value = f"{int(year):04d}-{month:02d}" if year else f"*-{month:02d}"
    return Fact(FactKind.MONTH, value, "")


def extract_facts(text: str) -> list[Fact]:
    """Every figure in `text` that a customer could take as a statement of fact."""
    return list(_extract_facts(text))


@lru_cache(maxsize=4096)
def _extract_facts(text: str) -> tuple[Fact, ...]:
    # Cached: the evidence of every turn re-reads the same templates, policy text and article
    # passages, and the scan (a dozen regular expressions) was ~0.5 ms of each turn.
    scanner = _Scanner(mask_personal_numbers(text))

    def ticket(m: re.Match[str]) -> Fact:
        return Fact(FactKind.TICKET, m.group(1).upper(), m.group(0))

    def iso_date(m: re.Match[str]) -> Fact:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        return Fact(FactKind.DATE, day.isoformat(), m.group(0))

    def cn_date(m: re.Match[str]) -> Fact | None:
        month, day = int(m.group(2)), int(m.group(3))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return None
        if m.group(1):
            return Fact(FactKind.DATE, date(int(m.group(1)), month, day).isoformat(), m.group(0))
        return Fact(FactKind.DATE, f"*-{month:02d}-{day:02d}", m.group(0))

    def iso_month(m: re.Match[str]) -> Fact | None:
        fact = _month(m.group(1), int(m.group(2)))
        return Fact(fact.kind, fact.value, m.group(0)) if fact else None

    def cn_month(m: re.Match[str]) -> Fact | None:
        fact = _month(m.group(1), int(m.group(2)))
        return Fact(fact.kind, fact.value, m.group(0)) if fact else None

    def word_month(m: re.Match[str]) -> Fact | None:
        fact = _month(None, int(_cn_to_decimal(m.group(1))))
        return Fact(fact.kind, fact.value, m.group(0)) if fact else None

    def year(m: re.Match[str]) -> Fact:
        return Fact(FactKind.NUMBER, m.group(1), m.group(0))

    def percent(m: re.Match[str]) -> Fact:
        number = _to_decimal(m.group(1)) if m.group(1) else _cn_to_decimal(m.group(2))
        return Fact(FactKind.PERCENT, canonical_number(number), m.group(0))

    def kwh(m: re.Match[str]) -> Fact:
        raw = m.group(1)
        number = _to_decimal(raw) if raw[0].isdigit() else _cn_to_decimal(raw)
        return Fact(FactKind.KWH, canonical_number(number), m.group(0))

    def money_arabic(m: re.Match[str]) -> Fact:
        if m.group(1):
            amount = _to_decimal(m.group(1))
        elif m.group(2):
            amount = _to_decimal(m.group(2)) + _digit(m.group(3)) / 10 + _digit(m.group(4)) / 100
        elif m.group(5):
            amount = _to_decimal(m.group(5)) / 10 + _digit(m.group(6)) / 100
        else:
            amount = _digit(m.group(7)) / 100
        return Fact(FactKind.MONEY, canonical_number(amount), m.group(0))

    def money_cn(m: re.Match[str]) -> Fact:
        if m.group(1):
            jiao = m.group(2) or m.group(3)  # 二百四十二元五角 / 二百四十二块五
            amount = _cn_to_decimal(m.group(1)) + _digit(jiao) / 10 + _digit(m.group(4)) / 100
        else:
            amount = _digit(m.group(5)) / 10 + _digit(m.group(6)) / 100
        return Fact(FactKind.MONEY, canonical_number(amount), m.group(0))

    def bare(m: re.Match[str]) -> Fact | None:
        raw = m.group(1)
        if "." not in raw and len(raw) < 2:
            return None  # "第1档", "3个工作日": single digits carry no figure worth checking
        return Fact(FactKind.NUMBER, canonical_number(_to_decimal(raw)), m.group(0))

    scanner.take(_TICKET, ticket)
    scanner.take(_ISO_DATE, iso_date)
    scanner.take(_CN_DATE, cn_date)
    scanner.take(_ISO_MONTH, iso_month)
    scanner.take(_CN_MONTH, cn_month)
    scanner.take(_CN_WORD_MONTH, word_month)
    scanner.take(_YEAR, year)
    scanner.take(_PERCENT, percent)
    scanner.take(_KWH, kwh)
    scanner.take(_MONEY_ARABIC, money_arabic)
    scanner.take(_MONEY_CN, money_cn)
    scanner.take(_BARE_NUMBER, bare)
    return tuple(scanner.facts)


# ---------------------------------------------------------------- evidence


@dataclass
class Evidence:
    """What a reply may state: values from tool results, passages, the user's words, constants."""

    numbers: set[str] = field(default_factory=set)
    dates: set[str] = field(default_factory=set)
    months: set[str] = field(default_factory=set)
    tickets: set[str] = field(default_factory=set)

    def add_text(self, text: str) -> None:
        """Every figure written in a passage or message counts, whatever unit it was written with."""
        for fact in extract_facts(text):
            self._add_fact(fact)
        # Numbers inside other tokens (account numbers, bill numbers) still count as said.
        for raw in re.findall(r"[0-9]+(?:\.[0-9]+)?", mask_personal_numbers(text)):
            self.numbers.add(canonical_number(Decimal(raw)))

    def add_value(self, value: Any) -> None:
        """A tool result: walk it and keep every number, date and string figure it holds."""
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, Decimal | int | float):
            self._add_number(Decimal(str(value)))
        elif isinstance(value, datetime):
            self._add_date(value.date())
        elif isinstance(value, date):
            self._add_date(value)
        elif isinstance(value, str):
            self._add_string(value)
        elif isinstance(value, Enum):
            self.add_value(value.value)
        elif isinstance(value, Mapping):
            for item in value.values():
                self.add_value(item)
        elif isinstance(value, Iterable):
            for item in value:
                self.add_value(item)
        elif hasattr(value, "model_dump"):
            self.add_value(value.model_dump())
        elif hasattr(value, "__dict__"):
            self.add_value(vars(value))

    def _add_string(self, value: str) -> None:
        stripped = value.strip()
        if re.fullmatch(r"20[0-9]{2}-[01][0-9]-[0-3][0-9](?:[T ].*)?", stripped):
            try:
                self._add_date(date.fromisoformat(stripped[:10]))
                return
            except ValueError:
                pass
        if re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", stripped):
            self._add_number(Decimal(stripped))
            return
        self.add_text(value)

    def _add_number(self, number: Decimal) -> None:
        self.numbers.add(canonical_number(number))
        self.numbers.add(canonical_number(abs(number)))
        quantized = number.quantize(Decimal("0.01")) if number == number.to_integral_value() else number
        self.numbers.add(canonical_number(quantized))

    def _add_date(self, day: date) -> None:
        self.dates.add(day.isoformat())
        self.dates.add(f"*-{day.month:02d}-{day.day:02d}")
        self.months.add(f"{day.year:04d}-{day.month:02d}")
        self.months.add(f"*-{day.month:02d}")
        self.numbers.add(str(day.year))

    def _add_fact(self, fact: Fact) -> None:
        if fact.kind is FactKind.DATE:
            if fact.value.startswith("*"):
                self.dates.add(fact.value)
                self.months.add(fact.value[:4])
            else:
                self._add_date(date.fromisoformat(fact.value))
        elif fact.kind is FactKind.MONTH:
            self.months.add(fact.value)
            self.months.add(f"*-{fact.value[-2:]}")
            if not fact.value.startswith("*"):
                self.numbers.add(fact.value[:4])
        elif fact.kind is FactKind.TICKET:
            self.tickets.add(fact.value)
        else:
            self.numbers.add(fact.value)

    def backs(self, fact: Fact) -> bool:
        """Whether this fact is supported by the evidence."""
        if fact.kind is FactKind.TICKET:
            return fact.value in self.tickets
        if fact.kind is FactKind.DATE:
            return fact.value in self.dates
        if fact.kind is FactKind.MONTH:
            return fact.value in self.months
        if fact.kind is FactKind.PERCENT:
            if fact.value in self.numbers:
                return True
            fraction = canonical_number(Decimal(fact.value) / 100)
            return fraction in self.numbers
        return fact.value in self.numbers


# Figures the service itself commits to (hotline, standard working-day promises); written in
# the policy, not invented by a brain. Kept small on purpose.
SERVICE_CONSTANTS = ("95598",)


def evidence_from(
    tool_results: Iterable[Any] = (),
    passages: Iterable[str] = (),
    user_messages: Iterable[str] = (),
    constants: Iterable[str] = SERVICE_CONSTANTS,
) -> Evidence:
    """Build the evidence of one turn."""
    evidence = Evidence()
    for result in tool_results:
        evidence.add_value(result)
    for text in passages:
        evidence.add_text(text)
    for text in user_messages:
        evidence.add_text(text)
    for text in constants:
        evidence.add_text(text)
    return evidence


@dataclass(frozen=True)
class GuardResult:
    """The masked reply and the figures in it that nothing backs (empty = grounded)."""

    text: str
    violations: tuple[Fact, ...]

    @property
    def grounded(self) -> bool:
        return not self.violations


def check_reply(reply: str, evidence: Evidence) -> GuardResult:
    """Mask personal numbers and list every unbacked figure of `reply`."""
    masked = mask_personal_numbers(reply)
    violations = tuple(fact for fact in extract_facts(masked) if not evidence.backs(fact))
    return GuardResult(masked, violations)
