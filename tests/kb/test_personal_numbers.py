"""Phone and ID masking: the boundaries the replies' guard and the logs share."""

from __future__ import annotations

import pytest

from knowledge_base.personal_numbers import mask_personal_numbers


def test_mobile_and_id_keep_only_what_staff_need() -> None:
    masked = mask_personal_numbers("手机13812345678，证件440106199001011234。")
    assert masked == "手机138****5678，证件440106********1234。"


@pytest.mark.parametrize("check", ["X", "x", "Ｘ"])
def test_id_check_digit_may_be_x(check: str) -> None:
    assert mask_personal_numbers(f"证件44010619900101123{check}") == f"证件440106********123{check}"


@pytest.mark.parametrize("text", [
    "213812345678",  # a phone inside a 12-digit run
    "13812345678９",  # ... whose last digit is full-width
    "8613812345678",  # a 13-digit run
    "4401061990010112345",  # 19 digits: no ID
    "044010619900101123X",  # an ID region code never starts with 0
])
def test_numbers_inside_longer_digit_runs_are_left_alone(text: str) -> None:
    assert mask_personal_numbers(text) == text


@pytest.mark.parametrize("account", ["130100000001", "440100000001", "0300123456"])
def test_account_numbers_are_not_phones(account: str) -> None:
    assert mask_personal_numbers(f"户号{account}已核实") == f"户号{account}已核实"


def test_bill_and_ticket_numbers_are_not_ids() -> None:
    text = "账单GD202612440100000001，工单WO202612030001"
    assert mask_personal_numbers(text) == text


def test_full_width_digits_are_masked_like_ascii() -> None:
    masked = mask_personal_numbers("手机１３８１２３４５６７８，证件４４０１０６１９９００１０１１２３Ｘ")
    assert masked == "手机１３８****５６７８，证件４４０１０６********１２３Ｘ"


def test_phone_next_to_letters_and_punctuation_is_masked() -> None:
    assert mask_personal_numbers("tel:13812345678;") == "tel:138****5678;"
    assert mask_personal_numbers("+86 13812345678") == "+86 138****5678"
    assert mask_personal_numbers("+8613812345678") == "+86138****5678"  # a caller id


def test_landlines_only_on_request() -> None:
    text = "营业厅020-87654321"
    assert mask_personal_numbers(text) == text  # replies quote public office numbers
    assert mask_personal_numbers(text, landlines=True) == "营业厅020-****4321"
    assert mask_personal_numbers("0755-12345678", landlines=True) == "0755-****5678"
