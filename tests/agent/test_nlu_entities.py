"""Entity extraction on realistic messages: typed values, spans, and the reference date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from agent.nlu.entities import (
    AccountNumber,
    Amount,
    BillingMonth,
    DigitSequence,
    DigitTail,
    Energy,
    Entity,
    IdCardNumber,
    PhoneNumber,
    RecentBills,
    SatisfactionLevel,
    SatisfactionRating,
    extract_entities,
)
from agent.nlu.normalize import normalize_text
from agent.nlu.numerals import digitise, spoken_digits_to_arabic
from agent.nlu.periods import shift_month

TODAY = date(2026, 6, 15)


def entities(text: str, today: date = TODAY) -> list[Entity]:
    return extract_entities(normalize_text(text), today)


def only(text: str, kind: type, today: date = TODAY):
    found = [e for e in entities(text, today) if isinstance(e, kind)]
    assert len(found) == 1, f"{text!r}: expected one {kind.__name__}, got {entities(text, today)}"
    return found[0]


# ---- ASR numerals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [
        ("幺三五", "135"),
        ("洞幺洞两", "0102"),
        ("幺拐勾洞", "1790"),
        ("两百", "200"),
        ("二零二六", "2026"),
        ("一百二十三", "123"),
    ],
)
def test_asr_digit_words_become_digits(spoken: str, digits: str) -> None:
    assert spoken_digits_to_arabic(spoken) == digits


def test_words_that_merely_contain_numerals_are_left_alone() -> None:
    for text in ["查一下电费", "服务一般", "墙上有个洞", "第二档电价", "十分满意", "点解咁贵"]:
        assert spoken_digits_to_arabic(text) == text


def test_digitised_positions_point_back_to_the_source() -> None:
    source = "户号三零零零，金额一百二十三元"
    dt = digitise(source)
    start = dt.text.index("123")
    assert dt.source_span(start, start + 3) == (source.index("一百"), source.index("元"))


# ---- account numbers, phones, tails ----------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "我的户号是300012345678",
        "户号 3000 1234 5678",
        "户号3000-1234-5678",
        "户号三零零零幺二三四五六七八",
        "户号 三零零零 幺二三四 五六七八",
        "户号：３０００１２３４５６７８",  # full-width digits from a phone keyboard
        "戶號是300012345678",  # Traditional characters
    ],
)
def test_account_number_in_every_spelling(message: str) -> None:
    account = only(message, AccountNumber)
    assert account.digits == "300012345678"


def test_account_number_keeps_leading_zeros_and_reports_its_span() -> None:
    text = normalize_text("我户号洞三洞幺二三四五六七八九，谢谢")
    [account] = [e for e in extract_entities(text, TODAY) if isinstance(e, AccountNumber)]
    assert account.digits == "030123456789"
    assert text[account.start : account.end] == account.text == "洞三洞幺二三四五六七八九"


def test_eleven_digits_starting_with_one_is_a_phone_not_an_account() -> None:
    assert only("手机号13812345678", PhoneNumber).digits == "13812345678"
    assert only("电话是 一五九 八七六五 四三二一", PhoneNumber).digits == "15987654321"
    assert not [e for e in entities("手机号13812345678") if isinstance(e, AccountNumber)]


def test_phone_tail_spoken_with_yao() -> None:
    tail = only("手机尾号幺三五七", DigitTail)
    assert (tail.digits, tail.kind) == ("1357", "phone")


def test_id_tail_ending_with_x() -> None:
    tail = only("身份证后四位123x", DigitTail)
    assert (tail.digits, tail.kind) == ("123X", "id")
    tail = only("证件尾号是 ００１２", DigitTail)  # full-width
    assert (tail.digits, tail.kind) == ("0012", "id")


def test_tail_without_a_named_document_is_unspecified() -> None:
    tail = only("后四位是2468", DigitTail)
    assert (tail.digits, tail.kind) == ("2468", "unspecified")


def test_account_and_tail_in_one_message() -> None:
    found = entities("户号：300012345678，手机尾号1234")
    assert [type(e) for e in found] == [AccountNumber, DigitTail]
    assert [e.digits for e in found] == ["300012345678", "1234"]  # type: ignore[attr-defined]


def test_full_id_card_number() -> None:
    assert only("身份证号44010619900101123X", IdCardNumber).digits == "44010619900101123X"


def test_other_digit_runs_are_kept_as_digit_sequences() -> None:
    assert only("工单号是12345", DigitSequence).digits == "12345"


# ---- months and periods ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "today", "expected"),
    [
        ("上个月电费多少", date(2026, 6, 15), (2026, 5)),
        ("上个月电费多少", date(2027, 1, 3), (2026, 12)),  # across the year boundary
        ("上上个月的账单", date(2027, 2, 1), (2026, 12)),
        ("上上个月的账单", date(2027, 1, 20), (2026, 11)),
        ("这个月交了没", date(2026, 6, 15), (2026, 6)),
        ("本月电费", date(2026, 6, 15), (2026, 6)),
        ("今个月电费几多", date(2026, 6, 15), (2026, 6)),
        ("今年五月的电费", date(2026, 6, 15), (2026, 5)),
        ("去年12月交了多少", date(2026, 6, 15), (2025, 12)),
        ("去年十二月交了多少", date(2026, 6, 15), (2025, 12)),
        ("2026年5月的账单", date(2026, 6, 15), (2026, 5)),
        ("二零二六年五月的电费", date(2026, 6, 15), (2026, 5)),
        ("2026-05", date(2026, 6, 15), (2026, 5)),
        ("２０２６－０５的账单", date(2026, 6, 15), (2026, 5)),
        ("2026/5 电费", date(2026, 6, 15), (2026, 5)),
        ("5月份电费", date(2026, 6, 15), (2026, 5)),
        ("五月份电费", date(2026, 6, 15), (2026, 5)),
        ("8月的电费", date(2026, 6, 15), (2025, 8)),  # a bare month that has not come yet: last year's
        ("十二月电费", date(2026, 6, 15), (2025, 12)),
    ],
)
def test_billing_month_relative_to_the_reference_date(message: str, today: date, expected: tuple) -> None:
    month = only(message, BillingMonth, today)
    assert (month.year, month.month) == expected
    assert month.period == f"{expected[0]:04d}-{expected[1]:02d}"


@pytest.mark.parametrize(
    ("message", "count"),
    [("最近3个月的电费", 3), ("前三个月", 3), ("近两期账单", 2), ("最近半年", 6), ("过去一年的电费", 12)],
)
def test_latest_n_bills(message: str, count: int) -> None:
    assert only(message, RecentBills).count == count
    assert not [e for e in entities(message) if isinstance(e, BillingMonth)]


def test_months_count_is_not_a_month() -> None:
    assert not [e for e in entities("我拖了两个月没交") if isinstance(e, BillingMonth)]


def test_shift_month_crosses_years_both_ways() -> None:
    assert shift_month(2027, 1, -1) == (2026, 12)
    assert shift_month(2026, 12, 1) == (2027, 1)
    assert shift_month(2026, 3, -15) == (2024, 12)


def test_month_span_matches_the_text() -> None:
    text = normalize_text("帮我查下去年十二月的电费")
    [month] = [e for e in extract_entities(text, TODAY) if isinstance(e, BillingMonth)]
    assert text[month.start : month.end] == "去年十二月"


# ---- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("电费123.45元", Decimal("123.45")),
        ("一百二十三元四角五分", Decimal("123.45")),
        ("两百块", Decimal("200")),
        ("交了三块五", Decimal("3.5")),
        ("¥88.8", Decimal("88.8")),
        ("才五毛", Decimal("0.5")),
        ("两千零五元", Decimal("2005")),
        ("三百块钱", Decimal("300")),
    ],
)
def test_amounts_are_decimals(message: str, value: Decimal) -> None:
    amount = only(message, Amount)
    assert isinstance(amount.value, Decimal)
    assert amount.value == value


def test_amount_and_month_in_one_message() -> None:
    found = entities("去年12月交了两百块")
    assert [type(e) for e in found] == [BillingMonth, Amount]
    assert found[1].value == Decimal("200")  # type: ignore[attr-defined]


# ---- satisfaction ratings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "level", "score"),
    [
        ("满意", SatisfactionLevel.SATISFIED, 4),
        ("非常满意", SatisfactionLevel.SATISFIED, 5),
        ("一般", SatisfactionLevel.NEUTRAL, 3),
        ("服务一般般吧", SatisfactionLevel.NEUTRAL, 3),
        ("不满意", SatisfactionLevel.DISSATISFIED, 2),
        ("很不满意", SatisfactionLevel.DISSATISFIED, 1),
        ("打5分", SatisfactionLevel.SATISFIED, 5),
        ("给你打三分", SatisfactionLevel.NEUTRAL, 3),
        ("1分", SatisfactionLevel.DISSATISFIED, 1),
        ("４", SatisfactionLevel.SATISFIED, 4),
        ("满分", SatisfactionLevel.SATISFIED, 5),
    ],
)
def test_satisfaction_ratings(message: str, level: SatisfactionLevel, score: int | None) -> None:
    rating = only(message, SatisfactionRating)
    assert (rating.level, rating.score) == (level, score)


def test_rating_words_inside_other_questions_are_not_ratings() -> None:
    assert not entities("一般几号出账单")
    assert not [e for e in entities("5分钟后再打给我") if isinstance(e, SatisfactionRating)]
    assert not [e for e in entities("给我打10分钟电话") if isinstance(e, SatisfactionRating)]


def test_nothing_is_invented_from_plain_text() -> None:
    assert entities("你好，我想问一下电费怎么交") == []


def test_hotline_transcript_with_radio_digits() -> None:
    found = entities("户号幺二三四 五六七八 九洞幺二 手机尾号拐拐八八")
    assert [type(e) for e in found] == [AccountNumber, DigitTail]
    assert found[0].digits == "123456789012"  # type: ignore[attr-defined]
    assert (found[1].digits, found[1].kind) == ("7788", "phone")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("message", "kwh"),
    [("我才用了三百五十度电", Decimal("350")), ("上个月用电 412.5 kWh", Decimal("412.5")), ("两百度", Decimal("200"))],
)
def test_consumption_in_kwh(message: str, kwh: Decimal) -> None:
    assert only(message, Energy).kwh == kwh


def test_temperatures_are_not_consumption() -> None:
    assert not [e for e in entities("空调开26度是不是很费电") if isinstance(e, Energy)]
    assert not [e for e in entities("今天气温三十五度") if isinstance(e, Energy)]


def test_a_named_month_wins_the_period_slot_over_a_relative_one() -> None:
    """「这个月突然变成四百八十度 … 核查一下5月的电费」: the story's 这个月 is not the bill meant."""
    from agent.agent import entities_for_slots

    text = "这个月突然变成四百八十度，家里也没添电器，想申请核查一下5月的电费"
    months = [e for e in extract_entities(text, TODAY) if isinstance(e, BillingMonth)]
    assert [(m.month, m.relative) for m in months] == [(6, True), (5, False)]
    assert entities_for_slots(extract_entities(text, TODAY))["period"] == "2026-05"
    assert entities_for_slots(extract_entities("上个月的电费多少", TODAY))["period"] == "2026-05"
    assert entities_for_slots(extract_entities("3月和4月的电费", TODAY))["period"] == "2026-03"  # first named
