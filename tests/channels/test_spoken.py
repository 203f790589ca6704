"""Spoken Chinese for the hotline: amounts, dates and account numbers read as a caller expects."""

from __future__ import annotations

from decimal import Decimal

import pytest

from channels.spoken import amount_to_spoken, integer_to_chinese, to_speech


@pytest.mark.parametrize(
    ("amount", "spoken"),
    [
        ("123.45", "一百二十三元四角五分"),
        ("100.05", "一百元零五分"),
        ("100", "一百元整"),
        ("0.50", "五角"),
        ("0.05", "五分"),
        ("10.10", "十元一角"),
        ("1005.30", "一千零五元三角"),
        ("100000.01", "十万元零一分"),
        ("-12.30", "负十二元三角"),
    ],
)
def test_amounts_are_read_in_yuan_jiao_fen(amount: str, spoken: str) -> None:
    assert amount_to_spoken(Decimal(amount)) == spoken


@pytest.mark.parametrize(
    ("number", "spoken"),
    [(10, "十"), (12, "十二"), (101, "一百零一"), (110, "一百一十"), (1010, "一千零一十"),
     (10005, "一万零五"), (100005, "十万零五"), (23000000, "二千三百万"), (0, "零")],
)
def test_integers_use_zero_for_gaps(number: int, spoken: str) -> None:
    assert integer_to_chinese(number) == spoken


def _hand_written_rule(number: int) -> str:
    """The table-driven rule integer_to_chinese had before it used cn2an (issue 12), kept as the oracle."""
    digits, units, sections_cn = "零一二三四五六七八九", ["", "十", "百", "千"], ["", "万", "亿", "万亿"]

    def four(value: int) -> str:
        text, zero_pending = "", False
        for position in range(3, -1, -1):
            digit = value // (10**position) % 10
            if digit == 0:
                zero_pending = zero_pending or bool(text)
                continue
            text += ("零" if zero_pending else "") + digits[digit] + units[position]
            zero_pending = False
        return text

    if number < 0:
        return "负" + _hand_written_rule(-number)
    if number == 0:
        return "零"
    sections: list[int] = []
    while number:
        sections.append(number % 10000)
        number //= 10000
    text, need_zero = "", False
    for index in range(len(sections) - 1, -1, -1):
        if sections[index] == 0:
            need_zero = bool(text)
            continue
        if text and (need_zero or sections[index] < 1000):
            text += "零"
        text += four(sections[index]) + sections_cn[index]
        need_zero = False
    return text[1:] if text.startswith("一十") else text


def test_cn2an_gives_the_text_of_the_hand_written_rule() -> None:
    """integer_to_chinese now leans on cn2an: the same text for every number the hotline reads.

    Includes the cases where bare cn2an differs (an empty 万 section after 亿, 万亿) and a seeded
    sample up to 10^16.
    """
    import random

    rng = random.Random(12)
    numbers = [*range(-120, 12_000), *(rng.randrange(10**k) for k in range(4, 17) for _ in range(300))]
    numbers += [a * 10**p + b for a in (1, 12, 9999) for p in (8, 12) for b in (0, 10, 15, 1000, 10**4, 10**7)]
    assert [n for n in numbers if integer_to_chinese(n) != _hand_written_rule(n)] == []


def test_reply_becomes_short_plain_sentences() -> None:
    text = ("**您的账单** 😀\n您2026年5月的电费为123.45元，用电256.3千瓦时，"
            "户号0300123456，请于2026-06-15前缴清，详见[1]。\n- 第一档电费：98.00元")
    sentences = to_speech(text)
    spoken = "".join(sentences)
    assert "二零二六年五月" in spoken
    assert "一百二十三元四角五分" in spoken
    assert "二百五十六点三千瓦时" in spoken
    assert "零三零零一二三四五六" in spoken  # account number digit by digit
    assert "二零二六年六月十五日" in spoken
    assert "九十八元整" in spoken
    for forbidden in ("*", "😀", "[1]", "- ", "#"):
        assert forbidden not in spoken
    assert not any(ch.isdigit() for ch in spoken)
    assert all(s.endswith(("。", "！", "？")) for s in sentences)
    assert all(len(s) <= 41 for s in sentences)


def test_long_sentence_is_split_at_commas() -> None:
    text = "，".join(["这是一个比较长的分句用于测试"] * 6) + "。"
    sentences = to_speech(text)
    assert len(sentences) > 1
    assert all(len(s) <= 41 for s in sentences)
