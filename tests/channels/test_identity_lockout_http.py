"""Guessing a customer's phone tail and road from many conversations on three channels (web,
WeChat, hotline), against a real `powerdesk serve` process over real HTTP: the 户号 is locked, the
right answer is refused after that on every channel, the replies leak nothing, and staff (only
staff) see the lock.

The lock's expiry is tested with a clock in tests/tools/test_identity_lockout.py (a real server
cannot wait an hour); the same counting on PostgreSQL is there too.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any

import httpx
import pytest
import xmltodict
from sqlalchemy import select

from billing_core.db.engine import session_scope
from billing_core.db.models import Bill, Customer
from channels.ivr_auth import signed_headers
from tests.channels.conftest import STAFF_TOKEN, demo_customers
from tests.channels.serve_process import ServeProcess, serve_process, web_conversation
from tests.channels.wechat_messages import plain_request, text_xml
from tools.models import IdentityAttempt
from tools.verify_identity import address_street

WECHAT_TOKEN = "lockout-test-wechat-token"
IVR_SECRET = "lockout-test-ivr-secret-0001"
STAFF = {"Authorization": f"Bearer {STAFF_TOKEN}"}
_MSG_IDS = count(880_000_000)
_CALL_IDS = count(1)


@dataclass(frozen=True)
class Target:
    account_no: str
    last4: str
    phone: str
    street: str
    secrets: tuple[str, ...]  # what must never reach a stranger: name and bill amounts


@pytest.fixture(scope="module")
def server(seeded_database: str) -> Iterator[ServeProcess]:
    env = {"POWERDESK_VAR_DIR": tempfile.mkdtemp(prefix="powerdesk-lockout-"), "POWERDESK_STAFF_TOKENS": STAFF_TOKEN,
           "POWERDESK_WECHAT_TOKEN": WECHAT_TOKEN, "POWERDESK_IVR_SECRET": IVR_SECRET,
           "POWERDESK_WECHAT_REPLY_DEADLINE": "60"}
    with serve_process(env) as process:
        yield process


@pytest.fixture(scope="module")
def target(seeded_database: str) -> Target:
    """A customer no other channel test verifies (this one gets locked), with a road on file."""
    for candidate in demo_customers(30)[10:]:
        with session_scope() as session:
            customer = session.scalar(select(Customer).where(Customer.account_no == candidate.account_no))
            assert customer is not None and customer.phone is not None
            street = address_street(customer.address or "")
            amounts = session.scalars(select(Bill.amount).where(Bill.customer_id == customer.id)).all()
            if street is not None:
                return Target(customer.account_no, candidate.last4, customer.phone, street,
                              (customer.name, *(format(a, "f") for a in amounts if a > 0)))
    raise AssertionError("no demo customer with a road in the address")


class Web:
    """A browser's web-chat conversation, with the token the server issued for it."""

    def __init__(self, base: str, client: str | None = None) -> None:
        self.base = base
        self.id, self.token = web_conversation(base)
        # The browser's address as nginx reports it (uvicorn trusts X-Forwarded-For from 127.0.0.1).
        self.headers = {**self.token, **({"X-Forwarded-For": client} if client else {})}

    def say(self, text: str) -> dict[str, Any]:
        response = httpx.post(f"{self.base}/api/chat/conversations/{self.id}/messages",
                              params={"stream": "false"}, json={"text": text}, headers=self.headers, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


def _wechat(base: str, openid: str, text: str) -> str:
    url, body = plain_request(WECHAT_TOKEN, text_xml(openid, text, next(_MSG_IDS)), openid)
    response = httpx.post(base + url, content=body, timeout=60)
    assert response.status_code == 200 and response.text != "success", response.text
    return str(xmltodict.parse(response.text)["xml"]["Content"])


class Call:
    """A hotline call as the signed telephony platform reports it, from `caller`."""

    def __init__(self, base: str, caller: str) -> None:
        self.base, self.caller, self.id = base, caller, f"lockout-call-{next(_CALL_IDS)}"

    def say(self, text: str) -> dict[str, Any]:
        body = json.dumps({"call_id": self.id, "transcript": text, "confidence": 0.95,
                           "caller_number": self.caller}, ensure_ascii=False).encode()
        response = httpx.post(self.base + "/ivr/turn", content=body, headers=signed_headers(IVR_SECRET, body),
                              timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


def _attempts(account_no: str) -> list[tuple[str, bool, bool]]:
    with session_scope() as session:
        rows = session.execute(select(IdentityAttempt.channel, IdentityAttempt.success,
                                      IdentityAttempt.refused_by_lock)
                               .where(IdentityAttempt.claimed_account == account_no)
                               .order_by(IdentityAttempt.id)).all()
    return [(channel, success, refused) for channel, success, refused in rows]


def test_guessing_from_web_wechat_and_the_hotline_locks_the_account_and_staff_see_it(
        server: ServeProcess, target: Target) -> None:
    base, account = server.url, target.account_no
    wrong = (tail for tail in (f"{n:04d}" for n in range(1000, 1100)) if tail != target.last4)
    replies: list[str] = []

    # Web: a wrong tail, then a bare 4-digit guess (the customer is asked for the tail again).
    first = Web(base)
    replies.append(first.say("查一下电费")["text"])
    answer = first.say(f"户号{account}，手机尾号{next(wrong)}")
    assert answer["awaiting"] == "last4" and answer["handoff"] is False
    replies += [answer["text"], first.say(next(wrong))["text"]]
    # WeChat: a follower with no bound account guesses.
    replies.append(_wechat(base, "o_lockout_guesser", f"户号{account}，尾号{next(wrong)}"))
    # Hotline: a call from the registered number with a wrong road counts against the same 户号.
    call = Call(base, target.phone)
    assert call.say("查一下电费")["awaiting"] == "check_answer"
    replies.append(call.say("幸福大道" if target.street != "幸福大道" else "光明路")["speech"])
    # A new web conversation: the fifth wrong answer.
    locked = Web(base).say(f"户号{account}，尾号{next(wrong)}")
    replies.append(locked["text"])
    assert locked["handoff"] is True
    assert _attempts(account) == [("web", False, False)] * 2 + [("wechat", False, False), ("ivr", False, False),
                                                                 ("web", False, False)]

    # Now the right answer is refused on every channel, and the customer is offered a person.
    owner = Web(base)
    refused = owner.say(f"户号{account}，手机尾号{target.last4}")
    assert refused["handoff"] is True and "转人工" in refused["text"] and "暂停" in refused["text"]
    replies += [refused["text"], owner.say("查一下电费")["text"]]
    replies.append(_wechat(base, "o_lockout_owner", f"户号{account}，尾号{target.last4}"))
    owner_call = Call(base, target.phone)
    owner_call.say("查一下电费")
    spoken = owner_call.say(target.street)
    assert spoken["handoff"] is True
    replies.append(spoken["speech"])
    assert _attempts(account)[-3:] == [("web", False, True), ("wechat", False, True), ("ivr", False, True)]
    for text in replies:
        for secret in target.secrets:
            assert secret not in text, (secret, text)

    # Staff see the lock, with the 户号, on the list and on the customer's card; customers do not.
    assert httpx.get(f"{base}/api/assist/identity-locks").status_code == 401
    assert httpx.get(f"{base}/api/assist/identity-locks",
                     headers={"Authorization": f"Bearer {owner.token['X-Conversation-Token']}"}).status_code == 403
    locks = httpx.get(f"{base}/api/assist/identity-locks", params={"scope": "account"}, headers=STAFF)
    assert locks.status_code == 200
    [lock] = [lock for lock in locks.json() if lock["account_no"] == account]
    assert (lock["wrong_answers"], lock["refused_right_answers"], lock["conversations"]) == (5, 3, 4)
    assert lock["channels"] == ["ivr", "web", "wechat"] and lock["customer_exists"] is True
    card = httpx.get(f"{base}/api/assist/customers/{account}/bills", headers=STAFF).json()
    assert card["identity_lock"]["locked_until"] == lock["locked_until"]


def test_staff_lift_a_lock_over_http_and_the_owner_verifies_again(server: ServeProcess, target: Target) -> None:
    base = server.url
    customer = demo_customers(30)[25]
    assert customer.account_no != target.account_no
    account = customer.account_no
    wrong = [tail for tail in (f"{n:04d}" for n in range(2000, 2010)) if tail != customer.last4]
    for tail in wrong[:5]:  # five strangers' conversations, one wrong tail each
        Web(base).say(f"户号{account}，尾号{tail}")
    locks = httpx.get(f"{base}/api/assist/identity-locks", params={"scope": "account"}, headers=STAFF).json()
    [lock] = [lock for lock in locks if lock["account_no"] == account]
    url = f"{base}/api/assist/identity-locks/{lock['id']}/lift"
    reason = {"reason": "客户到营业厅出示户主身份证，已人工核实"}

    owner = Web(base)
    assert httpx.post(url, json=reason).status_code == 401
    assert httpx.post(url, json=reason, headers={"Authorization": f"Bearer {owner.token['X-Conversation-Token']}"}
                      ).status_code == 403
    assert httpx.post(url, json={"reason": "   "}, headers=STAFF).status_code == 422
    assert httpx.post(url, json={}, headers=STAFF).status_code == 422
    assert httpx.post(f"{base}/api/assist/identity-locks/2147483647/lift", json=reason,
                      headers=STAFF).status_code == 404
    assert owner.say(f"户号{account}，手机尾号{customer.last4}")["handoff"] is True  # still locked
    lifted = httpx.post(url, json=reason, headers=STAFF)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["lifted_by"].startswith("staff:") and lifted.json()["reason"] == reason["reason"]
    assert lifted.json()["was_locked_until"] == lock["locked_until"]
    again = httpx.post(url, json=reason, headers=STAFF)
    assert again.status_code == 409 and "已于" in again.json()["detail"]

    # The owner verifies now, and one slip in a new conversation does not lock the 户号 again.
    assert Web(base).say(f"户号{account}，尾号{wrong[5]}")["handoff"] is False
    verified = Web(base)
    verified.say(f"户号{account}，手机尾号{customer.last4}")
    assert _attempts(account)[-1] == ("web", True, False)
    after = httpx.get(f"{base}/api/assist/identity-locks", params={"scope": "account"}, headers=STAFF).json()
    assert account not in [lock["account_no"] for lock in after]


def test_one_address_trying_account_after_account_over_http_is_locked(server: ServeProcess) -> None:
    from tools.service_policy import load_policy

    base, attacker = server.url, "203.0.113.50"
    limit = load_policy().verification.max_accounts_per_source
    real = demo_customers(30)[26]
    ghosts = [f"4401998{n:05d}" for n in range(limit)]
    replies = [Web(base, attacker).say(f"户号{ghost}，尾号0000") for ghost in ghosts]
    assert [r["handoff"] for r in replies] == [False] * (limit - 1) + [True]  # new conversation each time
    # Locked: the right answer for a real 户号 and a wrong one for a ghost read the same.
    owner_there = Web(base, attacker).say(f"户号{real.account_no}，手机尾号{real.last4}")
    ghost_there = Web(base, attacker).say(f"户号{ghosts[0]}，尾号1234")
    assert owner_there["handoff"] is ghost_there["handoff"] is True
    assert re.sub(r"HO\d+", "", owner_there["text"]) == re.sub(r"HO\d+", "", ghost_there["text"])
    assert real.account_no not in owner_there["text"] and "该户号" not in owner_there["text"]
    assert _attempts(real.account_no)[-1] == ("web", False, True)
    # The same customer from another address is not affected.
    Web(base, "198.51.100.9").say(f"户号{real.account_no}，手机尾号{real.last4}")
    assert _attempts(real.account_no)[-1] == ("web", True, False)
    # Staff see the source (and only staff), and can lift it.
    assert httpx.get(f"{base}/api/assist/identity-locks", params={"scope": "source"}).status_code == 401
    locks = httpx.get(f"{base}/api/assist/identity-locks", params={"scope": "source"}, headers=STAFF).json()
    [lock] = [lock for lock in locks if lock["key"] == f"web:{attacker}"]
    assert (lock["wrong_answers"], lock["conversations"], lock["channels"]) == (limit + 1, limit + 1, ["web"])
    lifted = httpx.post(f"{base}/api/assist/identity-locks/{lock['id']}/lift", headers=STAFF,
                        json={"reason": "营业厅自助终端共用地址，已人工核实"})
    assert lifted.status_code == 200, lifted.text
    assert Web(base, attacker).say(f"户号{ghosts[1]}，尾号0000")["handoff"] is False


def test_the_web_source_is_the_client_address_and_an_ipv6_client_its_64() -> None:
    from starlette.requests import Request

    from channels.web_chat import client_source

    def source(host: str | None) -> str | None:
        return client_source(Request({"type": "http", "client": (host, 5000) if host else None, "headers": []}))

    assert source("203.0.113.7") == "203.0.113.7"
    assert source("::ffff:203.0.113.7") == "203.0.113.7"
    # One phone or household holds a whole /64 and can pick any address in it.
    assert source("2001:db8:1:2:aaaa::1") == source("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source(None) is None
