"""Conversation state: what the dialogue engine remembers between turns, and where it keeps it.

In-process by default (one Python process, nothing to install). With `POWERDESK_REDIS_URL` set,
state lives in Redis so several app processes share one conversation and a restart loses
nothing. Both stores give a per-conversation lock (two messages of one conversation never run
at once) and idempotent message ids: a message id seen before returns the stored reply instead
of running a second turn — channels such as WeChat resend a message they think was lost.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)

REPLY_TTL_SECONDS = 7 * 24 * 3600  # how long a message id is remembered
STATE_TTL_SECONDS = 30 * 24 * 3600
# A conversation's lock is a lease: its holder renews it every LOCK_RENEW_SECONDS while the turn
# runs, so a slow turn (a model taking 30 s) keeps it, and a holder that stops renewing (killed,
# frozen, cut off from Redis) frees it within LOCK_TIMEOUT_SECONDS — the wait a resend to
# another replica has after a crash.
LOCK_TIMEOUT_SECONDS = 10.0
LOCK_RENEW_SECONDS = 3.0
LOCK_WAIT_SECONDS = 20.0
LOCK_RETRY_SECONDS = 0.1  # poll interval while another turn holds the lock


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
    """State in Redis: shared by processes, survives restarts (with Redis persistence).

    A turn's store calls cost two round trips instead of four: taking the lock also reads the
    state (one script), and the state saved inside the lock is written by the script that releases
    it, together with the conversation index and any stored reply. Outside a lock every call goes
    to Redis at once, as before. A process killed inside the lock loses its unreleased writes, but
    Agent.handle sends its reply only after the release, so the customer's resend runs the turn
    again on the state as it was. Each thread uses its own connection (agent.redis_client).
    """

    def __init__(self, url: str, prefix: str = "powerdesk") -> None:
        from agent.redis_client import PerThreadRedis

        # Bytes, not str: pydantic and json parse bytes directly, so decoding would be wasted work.
        self._clients = PerThreadRedis(url)
        self.prefix = prefix
        self._acquire_script = self._clients.script(_ACQUIRE_AND_READ)
        self._write_script = self._clients.script(_WRITE_AND_RELEASE)
        self._held = threading.local()  # this thread's locks: conversation id -> _HeldLock
        self._orphaned: dict[str, str] = {}  # lock key -> token of a lock this process failed to release
        self._renewer = _LockRenewer(self._clients)

    @property
    def client(self) -> Any:
        """This thread's Redis client (one connection per thread, see agent.redis_client)."""
        return self._clients.get()

    def _key(self, conversation_id: str, *parts: str) -> str:
        return ":".join((self.prefix, "conv", conversation_id, *parts))

    def _held_locks(self) -> dict[str, _HeldLock]:
        held = getattr(self._held, "locks", None)
        if held is None:
            held = self._held.locks = {}
        return held

    def load(self, conversation_id: str) -> ConversationState | None:
        held = self._held_locks().get(conversation_id)
        if held is not None:  # read with the lock, or saved since: no round trip
            raw = held.state_json if held.state_json is not None else held.state_read
        else:
            raw = self.client.get(self._key(conversation_id, "state"))
        return ConversationState.model_validate_json(raw) if raw else None

    def save(self, state: ConversationState) -> None:
        payload = state.model_dump_json()  # serialised now, so later changes to `state` are not saved
        held = self._held_locks().get(state.conversation_id)
        if held is not None:
            held.state_json = payload  # written when the lock is released, in the same round trip
            return
        self._write(state.conversation_id, token="", state_json=payload, replies={})

    @contextmanager
    def lock(self, conversation_id: str) -> Iterator[None]:
        """Hold the conversation's lock; writes made inside it reach Redis when it is released.

        The release runs on normal exit and on an exception alike, so a state saved before an
        error is kept, exactly as when save() wrote at once. The lock expires after
        LOCK_TIMEOUT_SECONDS after this process stops renewing it (`_LockRenewer`); its release
        only deletes our own token.
        """
        lock_key, state_key = self._key(conversation_id, "lock"), self._key(conversation_id, "state")
        # A lock whose release failed (Redis down, restarted on its append-only file with the lock
        # in it) is retaken at once with its own token by this process's next turn on the
        # conversation, instead of the resend waiting out LOCK_TIMEOUT_SECONDS.
        # pop: one thread at a time may try the orphaned token; it goes back if Redis is still away.
        orphan = self._orphaned.pop(lock_key, None)
        token = orphan or os.urandom(16).hex()
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                acquired, state_read = self._acquire_script(keys=[lock_key, state_key],
                                                            args=[token, int(LOCK_TIMEOUT_SECONDS * 1000)])
            except Exception:
                if orphan is not None:
                    self._orphaned.setdefault(lock_key, orphan)
                raise
            if acquired:
                break
            if time.monotonic() >= deadline:
                raise LockTimeout(f"conversation {conversation_id} is busy")
            time.sleep(LOCK_RETRY_SECONDS)
        held = _HeldLock(token=token, state_read=state_read)
        held_locks = self._held_locks()
        held_locks[conversation_id] = held
        self._renewer.add(lock_key, token)
        try:
            yield
        finally:
            self._renewer.remove(lock_key, token)
            del held_locks[conversation_id]
            try:
                self._write(conversation_id, token=token, state_json=held.state_json, replies=held.replies)
            except Exception:
                self._orphaned[lock_key] = token  # the turn is over: no one else in this process holds it
                raise

    def _write(self, conversation_id: str, token: str, state_json: str | None,
               replies: dict[str, str]) -> None:
        """One round trip: the state and its index entry, replies, then our lock (if `token`)."""
        keys = [self._key(conversation_id, "lock"), self._key(conversation_id, "state"),
                f"{self.prefix}:conversations"]
        keys.extend(self._key(conversation_id, "msg", message_id) for message_id in replies)
        args: list[str | int | float] = [token, state_json or "", STATE_TTL_SECONDS, conversation_id,
                                         datetime.now(UTC).timestamp(), REPLY_TTL_SECONDS]
        args.extend(replies.values())
        self._write_script(keys=keys, args=args)

    def stored_reply(self, conversation_id: str, message_id: str) -> dict[str, Any] | None:
        held = self._held_locks().get(conversation_id)
        if held is not None and message_id in held.replies:
            return json.loads(held.replies[message_id])
        raw = self.client.get(self._key(conversation_id, "msg", message_id))
        return json.loads(raw) if raw else None

    def store_reply(self, conversation_id: str, message_id: str, reply: dict[str, Any]) -> None:
        payload = json.dumps(reply, ensure_ascii=False)
        held = self._held_locks().get(conversation_id)
        if held is not None:
            held.replies[message_id] = payload  # written with the release, like the state
            return
        self.client.set(self._key(conversation_id, "msg", message_id), payload, ex=REPLY_TTL_SECONDS)

    def conversation_ids(self) -> list[str]:
        return [raw.decode() for raw in self.client.zrange(f"{self.prefix}:conversations", 0, -1)]


class _LockRenewer:
    """Extends every conversation lock this process holds, every LOCK_RENEW_SECONDS.

    One daemon thread per store and process (started by a lock when none runs: at the first, after
    an idle tick, after a fork) and one script call for all held locks, so renewing costs nothing
    per turn. A renewal only
    extends a lock that still holds our token; a failed one (Redis away) is logged and retried at
    the next tick, and the lock then lapses as a dead holder's would.
    """

    def __init__(self, clients: Any) -> None:
        self._script = clients.script(_RENEW)
        self._held: dict[str, str] = {}  # lock key -> token
        self._mutex = threading.Lock()
        self._pid: int | None = None

    def add(self, lock_key: str, token: str) -> None:
        with self._mutex:
            self._held[lock_key] = token
            if self._pid != os.getpid():  # first lock in this process (or a forked child)
                self._pid = os.getpid()
                threading.Thread(target=self._run, args=(self._pid,), name="conversation-lock-renewer",
                                 daemon=True).start()

    def remove(self, lock_key: str, token: str) -> None:
        with self._mutex:
            if self._held.get(lock_key) == token:
                del self._held[lock_key]

    def renew_now(self) -> int:
        """Renew every held lock once; returns how many still held our token."""
        with self._mutex:
            held = list(self._held.items())
        if not held:
            return 0
        return int(self._script(keys=[key for key, _ in held],
                                args=[int(LOCK_TIMEOUT_SECONDS * 1000), *(token for _, token in held)]))

    def _run(self, pid: int) -> None:
        while True:
            time.sleep(LOCK_RENEW_SECONDS)
            with self._mutex:
                if self._pid != pid:
                    return
                if not self._held:  # idle: the next lock starts a new thread
                    self._pid = None
                    return
            try:
                self.renew_now()
            except Exception as exc:  # Redis away: the next tick tries again
                logger.warning("conversation locks not renewed: %s: %s", type(exc).__name__, exc)


@dataclass
class _HeldLock:
    """A lock this thread holds, with what it read on acquiring and what it will write on release."""

    token: str
    state_read: bytes | None
    state_json: str | None = None
    replies: dict[str, str] = field(default_factory=dict)


# KEYS: lock, state. ARGV: token, lock expiry in ms. Returns {1, state or nil} when taken, {0, nil} if busy.
# Taking a lock that already holds our token succeeds: redis-py retries a command whose reply was
# lost to a dropped connection, and the retry must not wait for our own lock to expire.
_ACQUIRE_AND_READ = """
local holder = redis.call('get', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, redis.call('get', KEYS[2])}
end
return {0, false}
"""

# KEYS: lock keys. ARGV: lock expiry in ms, then each lock's token. Extends the locks still ours.
_RENEW = """
local renewed = 0
for i = 1, #KEYS do
  if redis.call('get', KEYS[i]) == ARGV[i + 1] then
    redis.call('pexpire', KEYS[i], ARGV[1])
    renewed = renewed + 1
  end
end
return renewed
"""

# KEYS: lock, state, conversation index, reply keys...
# ARGV: token ('' = no lock held), state JSON ('' = unchanged), state TTL, conversation id, now,
#       reply TTL, reply JSONs (one per reply key).
# State writes do not depend on still owning the lock, as before; the delete does (token check).
_WRITE_AND_RELEASE = """
if ARGV[2] ~= '' then
  redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
  redis.call('zadd', KEYS[3], ARGV[5], ARGV[4])
end
for i = 4, #KEYS do
  redis.call('set', KEYS[i], ARGV[i + 3], 'EX', ARGV[6])
end
if ARGV[1] ~= '' and redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  return 1
end
return 0
"""


def state_store_from_env() -> StateStore:
    """Redis when `POWERDESK_REDIS_URL` is set, otherwise in-process memory."""
    url = os.environ.get("POWERDESK_REDIS_URL")
    return RedisStateStore(url) if url else InMemoryStateStore()
