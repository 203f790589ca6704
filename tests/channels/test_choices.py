"""A clarifying question's quick replies on each channel: buttons' words in the web reply, the
same options numbered in the text WeChat shows, and an answer by number continues the task."""

from __future__ import annotations

import xmltodict
from fastapi.testclient import TestClient

from tests.channels.test_web_chat import _say
from tests.channels.test_wechat import TOKEN, _msg_id, cs_api, wechat  # noqa: F401  (fixtures)
from tests.channels.wechat_messages import plain_request, text_xml

UNSURE = "那个电的事情我想问问"


def test_web_reply_carries_the_choices_and_a_number_answers(client: TestClient) -> None:
    cid = client.post("/api/chat/conversations").json()["conversation_id"]
    asked = _say(client, cid, UNSURE)
    assert asked["awaiting"] == "choice" and not asked["handoff"]
    assert 2 <= len(asked["choices"]) <= 3 and "报告停电或用电故障" in asked["choices"]
    assert asked["choices"][0] != "报告停电或用电故障"  # the desk's own tasks come before hand-offs
    picked = _say(client, cid, "1")
    assert picked["awaiting"] in ("account_no", "last4") and not picked["choices"]


def test_wechat_shows_the_choices_as_a_numbered_list(wechat: TestClient) -> None:  # noqa: F811
    openid = "o_choices_user"
    url, body = plain_request(TOKEN, text_xml(openid, UNSURE, _msg_id()), openid)
    response = wechat.post(url, content=body)
    assert response.status_code == 200, response.text
    content = xmltodict.parse(response.text)["xml"]["Content"]
    assert "1. " in content and "2. " in content and "2. 报告停电或用电故障" in content
