"""Conversation state: what the dialogue engine remembers between turns, and where it keeps it.

In-process by default (one Python process, nothing to install). With `POWERDESK_REDIS_URL` set,
state lives in Redis so several app processes share one conversation and a restart loses
nothing. Both stores give a per-conversation lock (two messages of one conversation never run
at once) and idempotent message ids: a message id seen before returns the stored reply instead
of running a second turn — channels such as WeChat resend a message they think was lost.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

REPLY_TTL_SECONDS = 7 * 24 * 3600  # how long a message id is remembered
STATE_TTL_SECONDS = 30 * 24 * 3600
LOCK_TIMEOUT_SECONDS = 30.0  # a crashed holder frees the lock after this
LOCK_WAIT_SECONDS = 20.0


class PendingAction(BaseModel):
    """A write the customer has to confirm before it runs (dispute, complaint)."""

    tool: str
    arguments: dict[str, Any]
    summary: str  # the Chinese sentence read back to the customer


class ConversationState(BaseModel):
    """Everything a turn needs from earlier turns. JSON-serialisable so Redis can hold it."""

    conversation_id: str
    channel: str = "web"
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    account_no: str | None = None  # set once identity is verified
    claimed_account_no: str | None = None  # what the customer said, before verification
    verified: bool = False
    principal: dict[str, Any] | None = None  # the tools' Principal, kept server-side with the state
    identity_attempts: int = 0
    channel_identity: dict[str, str] = Field(default_factory=dict)  # openid, caller number …
    flow: str | None = None  # the task in progress (intent name)
    queue: list[str] = Field(default_factory=list)  # further intents of a multi-intent message
    slots: dict[str, Any] = Field(default_factory=dict)
    awaiting: str | None = None  # the slot (or "confirm", "csat") the last reply asked for
    pending: PendingAction | None = None
    history: list[dict[str, str]] = Field(default_factory=list)  # {"role": "user"|"assistant", "text"}
    last_tool_results: list[dict[str, Any]] = Field(default_factory=list)
    last_citations: list[dict[str, Any]] = Field(default_factory=list)
    record_id: int | None = None  # the conversations row in the records table
    turns: int = 0
    outcome: str | None = None
    tickets: list[str] = Field(default_factory=list)
    handed_off: bool = False
    csat_asked: bool = False
    closed: bool = False


class StateStore(Protocol):
    def load(self, conversation_id: str) -> ConversationState | None: ...

    def save(self, state: ConversationState) -> None: ...

    def lock(self, conversation_id: str) -> Any: ...

    def stored_reply(self, conversation_id: str, message_id: str) -> dict[str, Any] | None: ...

    def store_reply(self, conversation_id: str, message_id: str, reply: dict[str, Any]) -> None: ...

    def conversation_ids(self) -> list[str]: ...


class LockTimeout(RuntimeError):
    """Another turn of the same conversation held the lock too long."""


class InMemoryStateStore:
    """One process's memory: fast, lost at exit. The default when no Redis is configured."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self._replies: dict[tuple[str, str], dict[str, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self, conversation_id: str) -> ConversationState | None:
        raw = self._states.get(conversation_id)
        return ConversationState.model_validate_json(raw) if raw else None

    def save(self, state: ConversationState) -> None:
        # Stored as JSON, like Redis, so a caller mutating its copy never changes the store.
        self._states[state.conversation_id] = state.model_dump_json()

    @contextmanager
    def lock(self, conversation_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(conversation_id, threading.Lock())
        if not lock.acquire(timeout=LOCK_WAIT_SECONDS):
            raise LockTimeout(f"conversation {conversation_id} is busy")
        try:
            yield
        finally:
            lock.release()

    def stored_reply(self, conversation_id: str, message_id: str) -> dict[str, Any] | None:
        return self._replies.get((conversation_id, message_id))

    def store_reply(self, conversation_id: str, message_id: str, reply: dict[str, Any]) -> None:
        self._replies[(conversation_id, message_id)] = reply

    def conversation_ids(self) -> list[str]:
        return list(self._states)


class RedisStateStore:
    """State in Redis: shared by processes, survives restarts (with Redis persistence)."""

    def __init__(self, url: str, prefix: str = "powerdesk") -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    def _key(self, conversation_id: str, *parts: str) -> str:
        return ":".join((self.prefix, "conv", conversation_id, *parts))

    def load(self, conversation_id: str) -> ConversationState | None:
        raw = self.client.get(self._key(conversation_id, "state"))
        return ConversationState.model_validate_json(raw) if raw else None

    def save(self, state: ConversationState) -> None:
        pipe = self.client.pipeline()
        pipe.set(self._key(state.conversation_id, "state"), state.model_dump_json(), ex=STATE_TTL_SECONDS)
        pipe.zadd(f"{self.prefix}:conversations", {state.conversation_id: datetime.now(UTC).timestamp()})
        pipe.execute()

    @contextmanager
    def lock(self, conversation_id: str) -> Iterator[None]:
        from redis.exceptions import LockError

        lock = self.client.lock(self._key(conversation_id, "lock"), timeout=LOCK_TIMEOUT_SECONDS,
                                blocking_timeout=LOCK_WAIT_SECONDS)
        if not lock.acquire():
            raise LockTimeout(f"conversation {conversation_id} is busy")
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:  # expired while we worked: another holder may already own it
                pass

    def stored_reply(self, conversation_id: str, message_id: str) -> dict[str, Any] | None:
        raw = self.client.get(self._key(conversation_id, "msg", message_id))
        return json.loads(raw) if raw else None

    def store_reply(self, conversation_id: str, message_id: str, reply: dict[str, Any]) -> None:
        self.client.set(self._key(conversation_id, "msg", message_id), json.dumps(reply, ensure_ascii=False),
                        ex=REPLY_TTL_SECONDS)

    def conversation_ids(self) -> list[str]:
        return list(self.client.zrange(f"{self.prefix}:conversations", 0, -1))


def state_store_from_env() -> StateStore:
    """Redis when `POWERDESK_REDIS_URL` is set, otherwise in-process memory."""
    url = os.environ.get("POWERDESK_REDIS_URL")
    return RedisStateStore(url) if url else InMemoryStateStore()
