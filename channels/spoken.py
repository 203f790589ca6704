"""Turn a chat reply into text a TTS engine reads well on the hotline.

A speech synthesiser reads 「123.45元」 as digits and 「**」 as noise. Callers need amounts as
「一百二十三元四角五分」, years digit by digit (「二零二六年」), account numbers digit by digit, and
short sentences they can follow. The amounts themselves are not recomputed here: the text is only
re-spelled, so the figure spoken is exactly the figure the billing core produced.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import cn2an

from knowledge_base.digit_words import DIGIT_CHARS

_DIGITS = DIGIT_CHARS

MAX_SENTENCE_CHARS = 40


_LARGE_UNITS = ((10**12, "万亿"), (10**8, "亿"))  # the readings cn2an writes otherwise (see below)


def integer_to_chinese(number: int) -> str:
    """An integer read as a quantity: 123 → 一百二十三, 10 → 十, 100005 → 十万零五.

    cn2an writes it below one 亿. Above, its text differs from how the hotline reads a number:
    it drops the 零 of an empty 万 section (一亿零三千, not 一亿三千) and says 一万六千亿 for
    一万亿六千亿; so 亿 and 万亿 are split off here and each part is written by cn2an.
    """
    if number < 0:
        return "负" + integer_to_chinese(-number)
    for size, unit in _LARGE_UNITS:
        if number >= size:
            high, low = divmod(number, size)
            text = integer_to_chinese(high) + unit
            if not low:
                return text
            low_text = integer_to_chinese(low)
            if low_text.startswith("十"):
                low_text = "一" + low_text  # 一亿零一十, as inside a number
            return text + ("零" if low < size // 10 else "") + low_text
    return str(cn2an.an2cn(number, "low"))


def digits_to_chinese(digits: str) -> str:
    """Digit by digit, as for years and account numbers: 2026 → 二零二六."""
    return "".join(_DIGITS[int(d)] for d in digits if d.isdigit())


def amount_to_spoken(amount: Decimal | str) -> str:
    """Yuan to spoken Chinese money: 123.45 → 一百二十三元四角五分, 100.05 → 一百元零五分."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    sign = "负" if value < 0 else ""
    value = abs(value)
    yuan = int(value)
    cents = int((value - yuan) * 100)
    jiao, fen = divmod(cents, 10)
    text = integer_to_chinese(yuan) + "元" if yuan else ""
    if jiao:
        text += _DIGITS[jiao] + "角"
    if fen:
        if yuan and not jiao:
            text += "零"
        text += _DIGITS[fen] + "分"
    if not text:
        text = "零元"
    elif not jiao and not fen:
        text += "整"
    return sign + text


def decimal_to_spoken(number: str) -> str:
    """A plain number: 256.3 → 二百五十六点三."""
    try:
        value = Decimal(number)
    except InvalidOperation:
        return number
    whole, _, fraction = number.partition(".")
    text = integer_to_chinese(int(value)) if whole.lstrip("-") else "零"
    if fraction:
        text += "点" + digits_to_chinese(fraction)
    return text


_MARKDOWN = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links keep their text
    (re.compile(r"\[\d+\]"), ""),  # citation markers [1]
    (re.compile(r"`+"), ""),
    (re.compile(r"(\*\*|__|\*|~~)"), ""),
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE), ""),
    (re.compile(r"^\s*([-+•]|\d+[.)、])\s+", re.MULTILINE), ""),  # list bullets
    (re.compile(r"^\s*>\s?", re.MULTILINE), ""),
    (re.compile(r"\|"), "，"),
]
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\u200d\ufe0f\u2b50\u2b06\u2934\u2935]"
)

_AMOUNT = re.compile(r"(?:¥|￥)?(-?\d+(?:,\d{3})*(?:\.\d{1,2})?)\s*元")
_AMOUNT_PREFIXED = re.compile(r"(?:¥|￥)(-?\d+(?:,\d{3})*(?:\.\d{1,2})?)")
_FULL_DATE = re.compile(r"(\d{4})\s*[-/年]\s*(\d{1,2})\s*[-/月]\s*(\d{1,2})\s*日?")
_YEAR_MONTH = re.compile(r"(\d{4})\s*(?:年|-|/)\s*(\d{1,2})(?:\s*月|(?=\D|$))")
_MONTH_DAY = re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_MONTH = re.compile(r"(\d{1,2})\s*月")
_YEAR = re.compile(r"(\d{4})\s*年")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_LONG_DIGITS = re.compile(r"\d{5,}")  # account, phone, ticket numbers: digit by digit
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _spell_numbers(text: str) -> str:
    text = _AMOUNT.sub(lambda m: amount_to_spoken(m.group(1).replace(",", "")), text)
    text = _AMOUNT_PREFIXED.sub(lambda m: amount_to_spoken(m.group(1).replace(",", "")), text)
    text = _FULL_DATE.sub(
        lambda m: f"{digits_to_chinese(m.group(1))}年{integer_to_chinese(int(m.group(2)))}月"
        f"{integer_to_chinese(int(m.group(3)))}日",
        text,
    )
    text = _YEAR_MONTH.sub(
        lambda m: f"{digits_to_chinese(m.group(1))}年{integer_to_chinese(int(m.group(2)))}月", text
    )
    text = _MONTH_DAY.sub(
        lambda m: f"{integer_to_chinese(int(m.group(1)))}月{integer_to_chinese(int(m.group(2)))}日", text
    )
    text = _YEAR.sub(lambda m: f"{digits_to_chinese(m.group(1))}年", text)
    text = _MONTH.sub(lambda m: f"{integer_to_chinese(int(m.group(1)))}月", text)
    text = _PERCENT.sub(lambda m: "百分之" + decimal_to_spoken(m.group(1)), text)
    text = _LONG_DIGITS.sub(lambda m: digits_to_chinese(m.group(0)), text)
    text = _NUMBER.sub(lambda m: decimal_to_spoken(m.group(0)), text)
    return text


def _short_sentences(text: str) -> list[str]:
    """Split at sentence ends; split long sentences again at commas so each stays easy to follow."""
    pieces = [p.strip() for p in re.split(r"(?<=[。！？!?；;])|\n+", text) if p and p.strip()]
    sentences: list[str] = []
    for piece in pieces:
        piece = piece.strip("，, ")
        if not piece:
            continue
        if not re.search(r"[。！？!?]$", piece):
            piece = piece.rstrip("；;：:") + "。"
        while len(piece) > MAX_SENTENCE_CHARS:
            cut = max(piece.rfind("，", 0, MAX_SENTENCE_CHARS), piece.rfind("、", 0, MAX_SENTENCE_CHARS))
            if cut <= 0:
                break
            sentences.append(piece[:cut] + "。")
            piece = piece[cut + 1 :]
        sentences.append(piece)
    return sentences


def to_speech(text: str) -> list[str]:
    """Markdown/emoji-free short sentences with numbers spelled out, ready for TTS."""
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    text = _EMOJI.sub("", text)
    text = _spell_numbers(text)
    text = re.sub(r"[ \t]+", "", text)
    return _short_sentences(text)
