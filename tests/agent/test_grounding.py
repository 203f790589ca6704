"""The grounding guard catches invented figures, passes grounded ones and masks personal numbers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from agent.grounding import FactKind, check_reply, evidence_from, extract_facts, mask_personal_numbers

BILL = {"period": "2026-05", "amount": Decimal("242.55"), "total_kwh": Decimal("312.000"),
        "due_date": date(2026, 6, 20), "status": "issued"}


@pytest.mark.parametrize("written", ["242.55元", "242.55 元", "¥242.55", "二百四十二元五角五分", "242元5角5分"])
def test_amount_spellings_normalise_to_one_value(written: str) -> None:
    facts = extract_facts(f"本期电费{written}。")
    assert [(f.kind, f.value) for f in facts] == [(FactKind.MONEY, "242.55")]


def test_grounded_bill_reply_passes() -> None:
    evidence = evidence_from(tool_results=[BILL])
    reply = "您2026年5月的电费为二百四十二元五角五分，用电312度，请于2026-06-20前缴纳。"
    assert check_reply(reply, evidence).grounded


def test_invented_amount_is_caught() -> None:
    result = check_reply("您5月的电费为252.55元。", evidence_from(tool_results=[BILL]))
    assert [f.value for f in result.violations] == ["252.55"]


def test_invented_date_and_ticket_are_caught() -> None:
    evidence = evidence_from(tool_results=[BILL, {"ticket_no": "WO202611050001"}])
    result = check_reply("工单WO202611050002已受理，将在2026年6月25日前答复。", evidence)
    kinds = sorted(f.kind.value for f in result.violations)
    assert kinds == ["date", "ticket"]
    assert check_reply("工单WO202611050001已受理。", evidence).grounded


def test_invented_kwh_and_percent_are_caught() -> None:
    evidence = evidence_from(tool_results=[BILL, {"pf_rate": Decimal("0.015")}])
    assert check_reply("功率因数调整1.5%。", evidence).grounded
    bad = check_reply("您用了400千瓦时，调整了2%。", evidence)
    assert sorted(f.kind.value for f in bad.violations) == ["kwh", "percent"]


def test_user_message_and_passage_back_figures() -> None:
    evidence = evidence_from(user_messages=["我上个月交了300块"], passages=["受理后5个工作日内答复，第二档上限为260千瓦时"])
    assert check_reply("您说已缴纳300元；第二档上限260度。", evidence).grounded
    assert not check_reply("您说已缴纳310元。", evidence).grounded


def test_bare_numbers_must_be_backed_too() -> None:
    evidence = evidence_from(tool_results=[{"account_no": "0100012345"}])
    assert check_reply("户号0100012345已核实。", evidence).grounded
    assert not check_reply("户号0100099999已核实。", evidence).grounded
    assert check_reply("如需人工服务请拨打95598。", evidence).grounded


def test_phone_and_id_numbers_are_masked_everywhere() -> None:
    text = "手机13812341234，证件44010619900101123X。"
    assert mask_personal_numbers(text) == "手机138****1234，证件440106********123X。"
    result = check_reply(text, evidence_from(user_messages=[text]))
    assert "13812341234" not in result.text and "44010619900101123X" not in result.text
    assert result.grounded  # masked numbers are not counted as invented figures
