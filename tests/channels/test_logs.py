"""Logs never carry a full phone or ID-card number."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from channels.logs import JsonFormatter, mask_personal_data
from tests.channels.conftest import new_web_conversation


def test_phone_and_id_numbers_are_masked() -> None:
    text = "手机13812345678，身份证44010619900101123X，座机020-87654321，户号0300123456"
    masked = mask_personal_data(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "44010619900101123X" not in masked and "440106********123X" in masked
    assert "87654321" not in masked
    assert "0300123456" in masked  # account numbers are not personal data here


def test_json_formatter_masks_message_and_extra_fields() -> None:
    record = logging.LogRecord("powerdesk", logging.INFO, __file__, 1, "客户说 %s", ("13912345678",), None)
    record.caller = "13700001111"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "info"
    assert "13912345678" not in line and "13700001111" not in line
    assert entry["caller"] == "137****1111"


def test_each_turn_is_logged_as_json_without_the_customers_words(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="powerdesk.channels")
    cid = new_web_conversation(client)
    response = client.post(f"/api/chat/conversations/{cid}/messages?stream=false",
                           json={"text": "我的手机13812345678，电费怎么交"})
    assert response.status_code == 200
    turns = [r for r in caplog.records if r.getMessage() == "turn"]
    assert len(turns) == 1
    entry = json.loads(JsonFormatter().format(turns[0]))
    assert entry["channel"] == "web" and entry["conversation_id"] == cid
    assert isinstance(entry["ms"], float) and entry["ms"] > 0
    assert "13812345678" not in json.dumps(entry, ensure_ascii=False)


def test_numbers_after_an_escaped_newline_and_numeric_fields_are_masked() -> None:
    record = logging.LogRecord("powerdesk", logging.INFO, __file__, 1, "证件\n44010619900101123X", (), None)
    record.caller = 13700001111
    record.bill_no = "GD202612440100000001"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "证件\n440106********123X"
    assert entry["caller"] == "137****1111"
    assert entry["bill_no"] == "GD202612440100000001"  # a bill number is not an ID
