"""A Redis client per thread, each with its own connection, for the calls made on every chat turn.

redis-py's pooled client checks a connection out of the pool, polls it for stray data (one more
system call) and hands it back, on every command: about a third of the CPU a loopback round
trip costs the app. A client per thread that keeps one connection skips all that and is still
safe with threads, because no connection is ever shared. After a fork the child opens its own
connections instead of writing to the parent's sockets.

The pool's check-out poll is also what notices a connection the server dropped (a restart); a
kept connection finds out on its next command instead, so those commands are retried on a new
connection. Only idempotent commands belong here: a retried command may run twice if just its
reply was lost (the state store's scripts are written to be safe to run twice).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.commands.core import Script
from redis.retry import Retry

RETRIES = 3  # a restarted server or a dropped connection: reconnect and send again


class PerThreadRedis:
    """`get()` returns this thread's client; `script()` returns a Lua script callable from any thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def get(self) -> redis.Redis:
        client: redis.Redis | None = getattr(self._local, "client", None)
        if client is None or self._local.pid != os.getpid():
            client = redis.Redis.from_url(self.url, single_connection_client=True,
                                          retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), RETRIES))
            self._local.client, self._local.pid = client, os.getpid()
        return client

    def script(self, source: str) -> ThreadScript:
        return ThreadScript(self, source)


class ThreadScript:
    """A Lua script run by EVALSHA on the calling thread's client (loaded again if Redis forgot it)."""

    def __init__(self, clients: PerThreadRedis, source: str) -> None:
        self._clients = clients
        # Registered on a pooled client that connects lazily: building a store must not need Redis up.
        self._script = Script(redis.Redis.from_url(clients.url), source)

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        return self._script(keys=keys, args=args, client=self._clients.get())
