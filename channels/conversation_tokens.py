"""Web conversations belong to the browser that started them.

The server picks a web conversation's id (128 random bits) and signs it: the token is the time it
was issued and an HMAC-SHA256 over the channel, the id and that time, keyed by the site's
`POWERDESK_SESSION_SECRET`. The token travels as an HttpOnly cookie scoped to the conversation's
path (or, for API clients, in `X-Conversation-Token`). Nothing is stored per conversation, so any
`serve` process that shares the secret checks it, and a token dies with the conversation's state
(`conversation_ttl_seconds`). Without a valid token a conversation does not exist: the same 404 as
an id nobody issued, whichever channel the id belongs to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

WEB_ID_PREFIX = "web-"


def new_web_conversation_id() -> str:
    return WEB_ID_PREFIX + secrets.token_hex(16)


class ConversationTokens:
    """Issues and checks the tokens of one channel's conversations."""

    def __init__(self, secret: str, ttl_seconds: int, channel: str = "web") -> None:
        if not secret:
            raise ValueError("session_secret: must not be empty")
        self._key = hashlib.sha256(b"powerdesk conversation token\0" + secret.encode()).digest()
        self.ttl_seconds = ttl_seconds
        self.channel = channel

    def _mac(self, conversation_id: str, issued: int) -> str:
        message = f"{self.channel}\0{conversation_id}\0{issued}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, conversation_id: str, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._mac(conversation_id, issued)}"

    def check(self, conversation_id: str, token: str | None, now: float | None = None) -> bool:
        """Whether `token` was issued for this conversation and has not expired (constant-time)."""
        if not token or len(token) > 128 or not conversation_id.startswith(self.channel + "-"):
            return False
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit() or len(issued_text) > 12:
            return False
        issued = int(issued_text)
        current = time.time() if now is None else now
        if issued > current + 60 or current - issued > self.ttl_seconds:
            return False
        return hmac.compare_digest(mac.encode(), self._mac(conversation_id, issued).encode())
