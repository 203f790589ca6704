"""Reply templates: every template loads, slots are required, values are written for customers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from agent.grounding import extract_facts
from agent.replies import TemplateError, period_text, render, templates


def test_templates_are_chinese_and_slot_only_numbers_are_fixed_service_facts() -> None:
    loaded = templates()
    expected = {"ask_account", "ask_last4", "confirm_dispute", "ask_csat", "safe_fallback", "kb_answer"}
    assert expected <= set(loaded)
    for template in loaded.values():
        literal = template.text.format(**{slot: "" for slot in template.slots})
        chinese = any("\u4e00" <= ch <= "\u9fff" for ch in literal)
        assert template.slots == ("message",) or chinese, template.key
    # The only figures written into templates themselves: 12-digit 户号, 4 digits, 1-5 points, 95598.
    literals = [t.text.format(**{slot: "" for slot in t.slots}) for t in loaded.values()]
    fixed = {f.value for text in literals for f in extract_facts(text)}
    assert fixed <= {"12", "95598", "2026-05", "*-05"}


def test_missing_slot_is_refused_naming_it() -> None:
    with pytest.raises(TemplateError, match="amount"):
        render("bill_line", period="2026年5月", total_kwh="480", due="", status_cn="未缴费")
    with pytest.raises(TemplateError, match="nope"):
        render("nope")


def test_values_are_written_as_customers_read_them() -> None:
    text = render("bill_line", period=period_text("2026-05"), total_kwh="480", amount=Decimal("293.60"),
                  due=f"，缴费截止日{'2026年7月15日'}", status_cn="未缴费").text
    assert text == "2026年5月账单：用电480千瓦时，电费293.60元，缴费截止日2026年7月15日，未缴费。"
    assert render("verified", name_masked="陈**").text == "身份核实通过，户名陈**。"
    assert render("ask_account").awaiting == "account_no"
    from agent.replies import format_value

    assert format_value(date(2026, 7, 5)) == "2026年7月5日"
