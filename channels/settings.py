"""Settings of the channel layer (the web service), read from environment variables.

Defaults let `make run` start with nothing configured; production sets the WeChat credentials
and staff tokens. Shared settings (database, Redis) keep the names the other layers use.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from channels.secrets import site_secret


def _random_secret() -> str:
    """A fresh secret for settings built in code (tests, evals); `from_env` uses the site's."""
    return secrets.token_urlsafe(32)


def _secret_list(name: str, file_name: str) -> tuple[str, ...]:
    """A comma-separated list (several values while a secret is being rotated)."""
    raw = os.environ.get(name, "")
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    return values or (site_secret(name, file_name),)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


SHUTDOWN_GRACE_SECONDS = 30.0


def shutdown_grace_seconds() -> float:
    """How long `serve` lets in-flight requests (a streaming LLM turn lasts seconds) finish after
    SIGTERM before it cancels them; new connections are refused from the signal on."""
    value = _float("POWERDESK_SHUTDOWN_GRACE_SECONDS", SHUTDOWN_GRACE_SECONDS)
    if value < 0:
        raise ValueError(f"POWERDESK_SHUTDOWN_GRACE_SECONDS must not be negative, got {value}")
    return value


@dataclass(frozen=True)
class ChannelSettings:
    """Everything `create_app` needs besides the agent."""

    staff_tokens: frozenset[str] = frozenset()
    redis_url: str | None = None
    max_body_bytes: int = 64 * 1024
    rate_limit_per_minute: int = 120
    wechat_token: str = field(default_factory=_random_secret)
    wechat_app_id: str = "wx0000000000000000"
    wechat_app_secret: str = ""
    wechat_aes_key: str | None = None  # 43 characters; set for 安全模式
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_reply_deadline_seconds: float = 4.5
    wechat_replay_window_seconds: int = 300  # how far a callback's timestamp may be from our clock
    dedup_ttl_seconds: int = 600
    # Web chat: the key that signs conversation tokens, and how long a token lasts (the
    # conversation state's own lifetime, agent.state.STATE_TTL_SECONDS).
    session_secret: str = field(default_factory=_random_secret)
    conversation_ttl_seconds: int = 30 * 24 * 3600
    # Hotline: the telephony platform's shared HMAC secret(s) and the accepted clock skew.
    ivr_secrets: tuple[str, ...] = field(default_factory=lambda: (_random_secret(),))
    ivr_replay_window_seconds: int = 300
    ivr_low_confidence: float = 0.6
    ivr_max_failures: int = 2
    # How agent turns run (channels.deps.Services): 0 = automatic (local brain on the event loop,
    # LLM brain 40 at once in threads, whose turns mostly wait on the endpoint); N = N threads.
    turn_concurrency: int = 0
    # Sent back as X-PowerDesk-Replica on every response when set, so an operator (or a test behind
    # the load balancer) can tell which replica answered; unset = no header (nothing leaks by default).
    replica_name: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> ChannelSettings:
        tokens = os.environ.get("POWERDESK_STAFF_TOKENS", "")
        return cls(
            staff_tokens=frozenset(t.strip() for t in tokens.split(",") if t.strip()),
            redis_url=os.environ.get("POWERDESK_REDIS_URL") or None,
            max_body_bytes=_int("POWERDESK_MAX_BODY_BYTES", 64 * 1024),
            rate_limit_per_minute=_int("POWERDESK_RATE_LIMIT_PER_MINUTE", 120),
            wechat_token=site_secret("POWERDESK_WECHAT_TOKEN", "wechat_token"),
            session_secret=site_secret("POWERDESK_SESSION_SECRET", "session_secret"),
            ivr_secrets=_secret_list("POWERDESK_IVR_SECRET", "ivr_secret"),
            ivr_replay_window_seconds=_int("POWERDESK_IVR_REPLAY_WINDOW", 300),
            wechat_app_id=os.environ.get("POWERDESK_WECHAT_APP_ID", "wx0000000000000000"),
            wechat_app_secret=os.environ.get("POWERDESK_WECHAT_APP_SECRET", ""),
            wechat_aes_key=os.environ.get("POWERDESK_WECHAT_AES_KEY") or None,
            wechat_api_base=os.environ.get("POWERDESK_WECHAT_API_BASE", "https://api.weixin.qq.com"),
            wechat_reply_deadline_seconds=_float("POWERDESK_WECHAT_REPLY_DEADLINE", 4.5),
            wechat_replay_window_seconds=_int("POWERDESK_WECHAT_REPLAY_WINDOW", 300),
            turn_concurrency=_int("POWERDESK_TURN_CONCURRENCY", 0),
            replica_name=os.environ.get("POWERDESK_REPLICA_NAME") or None,
        )
