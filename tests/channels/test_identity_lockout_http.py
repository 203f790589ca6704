"""Guessing a customer's phone tail from many conversations on two channels, against a real
`powerdesk serve` process over real HTTP: the 户号 is locked, the right tail is refused after
that on every channel, the replies leak nothing, and staff (only staff) see the lock.

The lock's expiry is tested with a clock in tests/tools/test_identity_lockout.py (a real server
cannot wait an hour); the same counting on PostgreSQL is there too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import count
from typing import Any

import httpx
import pytest
import xmltodict
from sqlalchemy import select

from billing_core.db import session_scope
from billing_core.models import Bill, Customer
from tests.channels.conftest import STAFF_TOKEN, DemoCustomer, demo_customers
from tests.channels.serve_process import ServeProcess, serve_process
from tests.channels.wechat_messages import plain_request, text_xml
from tools.models import IdentityAttempt

WECHAT_TOKEN = "lockout-wechat-token"
STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}
_MSG_IDS = count(880_000_000)


@pytest.fixture(scope="module")
def server(seeded_database: str) -> Iterator[ServeProcess]:
    env = {"POWERDESK_VAR_DIR": os.environ["POWERDESK_VAR_DIR"], "POWERDESK_STAFF_TOKENS": STAFF_TOKEN,
           "POWERDESK_WECHAT_TOKEN": WECHAT_TOKEN}
    with serve_process(env) as process:
        yield process


@pytest.fixture(scope="module")
def target(seeded_database: str) -> DemoCustomer:
    return demo_customers(12)[-1]  # a customer no other channel test verifies: this one gets locked


class WebConversation:
    """A browser's web-chat conversation: its own cookie jar, and the bearer secret if the server
    returns one on creation (whatever ties the conversation to the browser that opened it)."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        created = self.http.post("/api/chat/conversations")
        assert created.status_code in (200, 201), created.text
        body = created.json()
        self.id = body["conversation_id"]
        secret = next((v for k, v in body.items() if k.endswith("token") and isinstance(v, str)), None)
        if secret:
            self.http.headers["Authorization"] = f"Bearer {secret}"

    def say(self, text: str) -> dict[str, Any]:
        response = self.http.post(f"/api/chat/conversations/{self.id}/messages", params={"stream": "false"},
                                  json={"text": text})
        assert response.status_code == 200, response.text
        return response.json()


def _wechat(base: str, openid: str, text: str) -> str:
    url, body = plain_request(WECHAT_TOKEN, text_xml(openid, text, next(_MSG_IDS)), openid)
    response = httpx.post(base + url, content=body, timeout=60)
    assert response.status_code == 200, response.text
    if response.text in ("", "success"):  # past WeChat's deadline: sent later by the service API
        return ""
    return str(xmltodict.parse(response.text)["xml"].get("Content") or "")


def _attempts(account_no: str) -> list[tuple[str, bool, bool]]:
    with session_scope() as session:
        rows = session.execute(select(IdentityAttempt.channel, IdentityAttempt.success,
                                      IdentityAttempt.refused_by_lock)
                               .where(IdentityAttempt.claimed_account == account_no)
                               .order_by(IdentityAttempt.id)).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _secrets(customer: DemoCustomer) -> list[str]:
    """What must never reach a stranger: the name, the amounts of the customer's bills."""
    with session_scope() as session:
        row = session.scalar(select(Customer).where(Customer.account_no == customer.account_no))
        assert row is not None
        amounts = session.scalars(select(Bill.amount).where(Bill.customer_id == row.id)).all()
        return [row.name, *(format(a, "f") for a in amounts if a > 0)]


def _wrong_tails(right: str) -> Iterator[str]:
    return (tail for tail in (f"{n:04d}" for n in range(1000, 1100)) if tail != right)


def test_guessing_from_web_and_wechat_locks_the_account_and_staff_see_it(
        server: ServeProcess, target: DemoCustomer) -> None:
    base, account = server.url, target.account_no
    wrong = _wrong_tails(target.last4)
    replies: list[str] = []

    # Web: one conversation, a wrong tail then a bare 4-digit guess (asked for the tail again).
    first = WebConversation(base)
    replies.append(first.say("查一下电费")["text"])
    answer = first.say(f"户号{account}，手机尾号{next(wrong)}")
    assert answer["awaiting"] == "last4" and answer["handoff"] is False
    replies += [answer["text"], first.say(next(wrong))["text"]]
    # A second web conversation (the guesser opens a new one), then two WeChat followers.
    replies.append(WebConversation(base).say(f"户号{account}，尾号{next(wrong)}")["text"])
    for n in range(2):
        replies.append(_wechat(base, f"o_lockout_guesser_{n}", f"户号{account}，尾号{next(wrong)}"))
    assert [(c, s, r) for c, s, r in _attempts(account)] == \
        [("web", False, False)] * 3 + [("wechat", False, False)] * 2

    # Five wrong answers from four conversations on two channels: the right tail is refused now,
    # on the web and on WeChat, and the customer is offered a person.
    owner = WebConversation(base)
    refused = owner.say(f"户号{account}，手机尾号{target.last4}")
    assert refused["handoff"] is True and "转人工" in refused["text"] and "暂停" in refused["text"]
    replies += [refused["text"], owner.say("查一下电费")["text"]]
    replies.append(_wechat(base, "o_lockout_owner", f"户号{account}，尾号{target.last4}"))
    assert _attempts(account)[-2:] == [("web", False, True), ("wechat", False, True)]
    for text in replies:
        for secret in _secrets(target):
            assert secret not in text, (secret, text)

    # Staff see the lock, with the 户号, on the list and on the customer's card; customers do not.
    assert httpx.get(f"{base}/api/assist/identity-locks").status_code == 401
    assert httpx.get(f"{base}/api/assist/identity-locks",
                     headers={"Authorization": f"Bearer {owner.id}"}).status_code == 403
    locks = httpx.get(f"{base}/api/assist/identity-locks", params={"scope": "account"}, headers=STAFF)
    assert locks.status_code == 200
    mine = [lock for lock in locks.json() if lock["account_no"] == account]
    assert len(mine) == 1
    lock = mine[0]
    assert (lock["wrong_answers"], lock["refused_right_answers"], lock["conversations"]) == (5, 2, 4)
    assert lock["channels"] == ["web", "wechat"] and lock["customer_exists"] is True
    card = httpx.get(f"{base}/api/assist/customers/{account}/bills", headers=STAFF).json()
    assert card["identity_lock"]["locked_until"] == lock["locked_until"]
