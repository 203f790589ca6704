"""Two `powerdesk serve` processes on shared PostgreSQL, Redis and Chroma serve one conversation.

Turns alternate between the processes and keep their state; a WeChat retry that lands on the
other process is answered once; killing one process mid-conversation loses nothing.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import xmltodict
from sqlalchemy import func, select

from agent.models import ConversationRecord, TurnRecord
from billing_core.db.engine import make_engine
from tests.channels.cs_api_server import CustomerServiceApi, customer_service_api
from tests.channels.serve_process import POWERDESK, ServeProcess, demo_customers, serve_process, web_conversation
from tests.channels.wechat_messages import plain_request, text_xml
from tests.servers.chroma import chroma_server
from tests.servers.postgres import postgres_server
from tests.servers.redis import redis_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.chroma_server]

WECHAT_TOKEN = "scaleout-token"
WECHAT_APP_ID, WECHAT_SECRET = "wx00scaleout0001", "scaleout-secret"


@pytest.fixture(scope="module")
def cs_api() -> Iterator[CustomerServiceApi]:
    with customer_service_api(WECHAT_APP_ID, WECHAT_SECRET) as api:
        yield api


@pytest.fixture(scope="module")
def shared_env(cs_api: CustomerServiceApi) -> Iterator[dict[str, str]]:
    with postgres_server() as pg, redis_server() as redis, chroma_server() as chroma:
        env = {"POWERDESK_WECHAT_APP_ID": WECHAT_APP_ID, "POWERDESK_WECHAT_APP_SECRET": WECHAT_SECRET,
               "POWERDESK_WECHAT_API_BASE": cs_api.base_url,
               "POWERDESK_DATABASE_URL": pg.create_database(), "POWERDESK_REDIS_URL": redis.url,
               "POWERDESK_CHROMA_URL": chroma.url,
               "POWERDESK_VAR_DIR": tempfile.mkdtemp(prefix="powerdesk-so-"),
               "POWERDESK_WECHAT_TOKEN": WECHAT_TOKEN}
        full = {**os.environ, **env}
        subprocess.run([str(POWERDESK), "db", "upgrade"], env=full, check=True, capture_output=True)
        subprocess.run([str(POWERDESK), "demo", "seed", "--customers", "30", "--seed", "11"], env=full,
                       check=True, capture_output=True)
        yield env


@pytest.fixture(scope="module")
def customer(shared_env: dict[str, str]) -> dict[str, Any]:
    found = demo_customers(shared_env["POWERDESK_DATABASE_URL"])
    assert found, "no demo customer with a bill"
    return found[0]


# Conversation id -> the header with its token (issued by one process, accepted by all).
_TOKENS: dict[str, dict[str, str]] = {}


def _start(server: ServeProcess) -> str:
    cid, headers = web_conversation(server.url)
    _TOKENS[cid] = headers
    return cid


def _say(server: ServeProcess, cid: str, text: str) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/chat/conversations/{cid}/messages?stream=false",
                          json={"text": text}, headers=_TOKENS[cid], timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _turns(env: dict[str, str], conversation_id: str) -> int:
    engine = make_engine(env["POWERDESK_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count(TurnRecord.id)).join(ConversationRecord).where(
                ConversationRecord.conversation_id == conversation_id)).scalar_one()
    finally:
        engine.dispose()


def test_two_processes_share_one_conversation(shared_env: dict[str, str], customer: dict[str, Any],
                                              cs_api: CustomerServiceApi) -> None:
    with serve_process(shared_env) as a, serve_process(shared_env) as b:
        cid = _start(a)
        first = _say(a, cid, f"查一下{customer['period']}的电费")
        assert first["awaiting"] in ("account_no", "last4")
        _say(b, cid, f"户号{customer['account']}，手机号后四位{customer['last4']}")  # verified on B
        answer = _say(a, cid, f"查一下{customer['period']}的电费")  # A knows the customer is verified
        assert customer["amount"] in answer["text"]

        # A WeChat retry of one message lands on the other process: one turn, one answer.
        openid = "o_scaleout_retry"
        xml = text_xml(openid, "电费怎么交", int(time.time() * 1000))
        passive = set()
        for server in (a, b, b):  # WeChat's three tries, the retries on the other process
            url, body = plain_request(WECHAT_TOKEN, xml)
            response = httpx.post(server.url + url, content=body, timeout=30)
            assert response.status_code == 200
            if response.text != "success":
                passive.add(xmltodict.parse(response.text)["xml"]["Content"])
        deadline = time.monotonic() + 30
        while not passive and not cs_api.sent and time.monotonic() < deadline:
            time.sleep(0.2)  # a slow first turn answers through the customer-service API instead
        time.sleep(1)
        assert len(passive) + len(cs_api.sent) == 1, (passive, cs_api.sent)
        assert _turns(shared_env, f"wechat-{openid}") == 1

        # Kill A while it is answering; the customer's page resends the same message id to B.
        cid2 = _start(b)
        _say(a, cid2, f"户号{customer['account']}，手机号后四位{customer['last4']}")
        question = {"text": f"查一下{customer['period']}的电费", "message_id": "m-kill-0001"}
        in_flight = threading.Thread(target=_post_ignoring_errors, args=(a, cid2, question), daemon=True)
        in_flight.start()
        time.sleep(0.05)
        a.kill()
        after = _resend_until_answered(b, cid2, question, timeout=90)
        assert customer["amount"] in after["text"]
        transcript = httpx.get(f"{b.url}/api/chat/conversations/{cid2}", headers=_TOKENS[cid2], timeout=10).json()
        assert transcript["account_no"] == customer["account"]
        assert transcript["turns"][0]["user_text"].startswith("户号")  # nothing before the kill is lost
        assert transcript["turns"][-1]["user_text"] == question["text"]
        assert customer["amount"] in transcript["turns"][-1]["reply_text"]


def _post_ignoring_errors(server: ServeProcess, cid: str, body: dict[str, str]) -> None:
    try:
        httpx.post(f"{server.url}/api/chat/conversations/{cid}/messages?stream=false", json=body,
                   headers=_TOKENS[cid], timeout=30)
    except httpx.HTTPError:
        pass  # the process was killed under this request


def _resend_until_answered(server: ServeProcess, cid: str, body: dict[str, str],
                           timeout: float) -> dict[str, Any]:
    """What the page does: resend the same message id while the service answers 503 (lock still held
    by the killed process until it expires)."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(f"{server.url}/api/chat/conversations/{cid}/messages?stream=false", json=body,
                              headers=_TOKENS[cid], timeout=60)
        if response.status_code != 503 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()
        time.sleep(float(response.headers.get("retry-after", "1")))
