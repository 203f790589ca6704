"""Who may open a conversation: signed web tokens, generated site secrets, the agent's channel check."""

from __future__ import annotations

import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.agent import ConversationNotFound
from channels.conversation_tokens import ConversationTokens, new_web_conversation_id
from channels.ivr_auth import IvrAuthError, check_signature, signed_headers
from channels.secrets import site_secret
from channels.settings import ChannelSettings


def test_a_token_opens_only_its_own_conversation_until_it_expires() -> None:
    tokens = ConversationTokens("secret-a", ttl_seconds=3600)
    mine, other = new_web_conversation_id(), new_web_conversation_id()
    assert mine != other and len(mine) == len("web-") + 32  # 128 random bits
    token = tokens.issue(mine, now=1_000_000)
    assert tokens.check(mine, token, now=1_000_100)
    assert not tokens.check(other, token, now=1_000_100)
    assert not tokens.check(mine, token, now=1_000_000 + 3601)  # expired with the conversation
    assert not ConversationTokens("secret-b", 3600).check(mine, token, now=1_000_100)  # another site's key
    issued, mac = token.split(".")
    assert not tokens.check(mine, f"{int(issued) + 1}.{mac}", now=1_000_100)  # a moved issue time
    flipped = "B" if mac[-1] == "A" else "A"
    assert not tokens.check(mine, f"{issued}.{mac[:-1]}{flipped}", now=1_000_100)  # one character off
    for junk in (None, "", "x", ".", "abc.def", "9" * 200):
        assert not tokens.check(mine, junk, now=1_000_100)
    # Another channel's ids are never web conversations, whatever token comes with them.
    assert not tokens.check("wechat-o_abc", tokens.issue("wechat-o_abc"))


def test_the_site_secret_is_generated_once_private_and_shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERDESK_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("POWERDESK_WECHAT_TOKEN", raising=False)
    results: list[str] = []
    workers = [threading.Thread(target=lambda: results.append(site_secret("POWERDESK_X", "x"))) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(set(results)) == 1 and len(results[0]) >= 43  # 256 bits, all workers agree
    path = tmp_path / "secrets" / "x"
    assert path.read_text() == results[0] and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["x"]  # no temporary file left behind
    first = ChannelSettings.from_env().wechat_token
    assert first not in ("powerdesk", "") and ChannelSettings.from_env().wechat_token == first
    monkeypatch.setenv("POWERDESK_WECHAT_TOKEN", "configured")
    assert ChannelSettings.from_env().wechat_token == "configured"
    monkeypatch.setenv("POWERDESK_VAR_DIR", str(tmp_path / "another-site"))
    monkeypatch.delenv("POWERDESK_WECHAT_TOKEN")
    assert ChannelSettings.from_env().wechat_token != first


def test_ivr_signature_rules() -> None:
    body, now = b'{"call_id":"c-1"}', time.time()
    headers = signed_headers("s3cret", body, now=now)
    args = (headers["X-PowerDesk-Timestamp"], headers["X-PowerDesk-Nonce"], headers["X-PowerDesk-Signature"])
    assert check_signature(["old", "s3cret"], *args, body, 300, now=now) == headers["X-PowerDesk-Nonce"]
    cases: list[tuple[Any, int]] = [
        ((None, args[1], args[2], body), 401),
        ((args[0], "short", args[2], body), 401),
        ((args[0], args[1], "md5=abc", body), 401),
        ((args[0], args[1], args[2], body + b" "), 403),
        ((str(int(now) - 301), args[1], args[2], body), 401),
    ]
    for (timestamp, nonce, given, signed_body), status in cases:
        with pytest.raises(IvrAuthError) as refused:
            check_signature(["s3cret"], timestamp, nonce, given, signed_body, 300, now=now)
        assert refused.value.status == status
    with pytest.raises(IvrAuthError):
        check_signature(["another"], *args, body, 300, now=now)


def test_the_agent_refuses_a_conversation_of_another_channel(agent: Any) -> None:
    agent.handle("wechat-o_owner_check", "wechat", "电费怎么交", identity={"openid": "o_owner_check"})
    for channel in ("web", "ivr", "app"):
        with pytest.raises(ConversationNotFound):
            agent.handle("wechat-o_owner_check", channel, "查电费")
    with pytest.raises(ConversationNotFound):
        agent.rate("wechat-o_owner_check", 5, "web")
    assert agent.state("wechat-o_owner_check").turns == 1  # nothing ran for the intruders
