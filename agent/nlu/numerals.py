"""Chinese numerals → Arabic digits, keeping a map back to the original positions.

Customers and hotline ASR write numbers in words: 户号 digit by digit (「三零零零幺二三四…」, with
the radio-style 幺=1, 两=2, 拐=7, 勾=9, 洞=0), amounts with units (「一百二十三元四角五分」),
months (「十二月」). Entity patterns are simpler and safer on digits, so this module rewrites a
text into digits and remembers, for every output character, which span of the input it came
from; entities can then report spans in the customer's own text.

Values with units are converted by cn2an (a real, tested library); a run of bare digit words
is read digit by digit (cn2an would read 「一二三四」 the same way, but we keep a 1:1 mapping so
that a 12-digit 户号 keeps its leading zeros and positions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cn2an

from knowledge_base.digit_words import DIGIT_WORDS, RADIO_DIGIT_WORDS

# Digit words read one digit each (幺/洞/拐/勾: the radio and IVR pronunciations); radio-style
# words that are also ordinary characters (「墙上有个洞」) are digits only inside a run.
_RADIO_ONLY = RADIO_DIGIT_WORDS
_UNIT_WORDS = "十百千万亿点"
_NUMERAL_RUN = re.compile(f"[{''.join(DIGIT_WORDS)}{_UNIT_WORDS}]+")
# Words where a numeral character is not a number.
_NOT_NUMBERS = re.compile(
    r"一下|一般|一起|一直|一定|一样|一点儿?(?!\d)|一些|一共|统一|万一|百分|十分(?=满意|不满|好|差|感谢|着急)"
    r"|千万|点解|点样|点算|点计|点办|几点|有点|一点点|查一查|三相|两部制|二维码|一户|万元户|一档|二档|三档"
    r"|第[一二三四五六七八九十]|星期[一二三四五六日天]|周[一二三四五六日]|礼拜[一二三四五六日天]"
)


@dataclass(frozen=True, slots=True)
class DigitisedText:
    """`text` with numerals as digits; `source_start[i]`/`source_end[i]` locate character i in the input."""

    text: str
    source_start: tuple[int, ...]
    source_end: tuple[int, ...]

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The input span that produced `text[start:end]`."""
        return self.source_start[start], self.source_end[end - 1]


def _convert_run(run: str) -> str | None:
    """Digits for one run of numeral characters, or None if it is not a number."""
    if all(ch in DIGIT_WORDS for ch in run):
        if len(run) < 3 and any(ch in _RADIO_ONLY for ch in run):
            return None
        return "".join(DIGIT_WORDS[ch] for ch in run)
    if run.startswith("点") or run.endswith("点"):
        return None
    try:
        value = cn2an.cn2an(run, "smart")
    except (ValueError, KeyError):
        return None
    text = format(value, "f") if isinstance(value, float) else str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def _protected_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _NOT_NUMBERS.finditer(text)]


def digitise(text: str) -> DigitisedText:
    """Rewrite Chinese numerals in `text` as Arabic digits, with a position map back to `text`."""
    protected = _protected_spans(text)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    cursor = 0
    for match in _NUMERAL_RUN.finditer(text):
        start, end = match.span()
        # Cut the run where a protected word begins (「查一下」, 「一般」).
        for p_start, p_end in protected:
            if p_start < end and p_end > start:
                if p_start <= start:
                    start = min(max(start, p_end), end)
                else:
                    end = p_start
        if start >= end:
            continue
        digits = _convert_run(text[start:end])
        if digits is None:
            continue
        for index in range(cursor, start):
            out.append(text[index])
            starts.append(index)
            ends.append(index + 1)
        if len(digits) == end - start:
            for offset, digit in enumerate(digits):
                out.append(digit)
                starts.append(start + offset)
                ends.append(start + offset + 1)
        else:
            for digit in digits:
                out.append(digit)
                starts.append(start)
                ends.append(end)
        cursor = end
    for index in range(cursor, len(text)):
        out.append(text[index])
        starts.append(index)
        ends.append(index + 1)
    return DigitisedText("".join(out), tuple(starts), tuple(ends))


def spoken_digits_to_arabic(text: str) -> str:
    """Convenience: just the digitised text (「幺三五」 → 「135」)."""
    return digitise(text).text
