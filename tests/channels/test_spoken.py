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
