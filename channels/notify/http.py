"""A small keep-alive HTTP/1.1 client for the senders: one connection per (thread, host).

The outbox worker sends thousands of tiny requests a second from a thread pool; the standard
library's `http.client` on a kept-alive connection costs about half of what httpx does per request
(measured against the local fake provider), and a worker's CPU is what bounds its throughput.
A request on a reused connection that the server had already closed (an idle keep-alive timeout)
is sent once more on a fresh one, as browsers do; any other failure is the caller's to classify.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class HttpError(Exception):
    """A transport failure (not a time-out): connection refused, reset, a malformed reply."""


class KeepAliveHttp:
    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        self.prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self._timeout)
        self._local.connection = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()
            with self._lock:
                if connection in self._all:
                    self._all.remove(connection)

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                body: bytes | None = None, content_type: str | None = None) -> tuple[int, bytes]:
        """(status, body) of one request; raises TimeoutError or HttpError."""
        target = self.prefix + path + (f"?{urlencode(query)}" if query else "")
        headers = {"User-Agent": f"powerdesk-notify/{os.getpid()}"}  # which worker process sent it
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            connection, reused = self._connection()
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.will_close:
                    self._drop()
                return response.status, data
            except TimeoutError:
                self._drop()
                raise
            except _STALE as exc:
                self._drop()
                if not reused or attempt:
                    raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        raise HttpError("unreachable")  # pragma: no cover

    def get_json(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        status, data = self.request("GET", path, query=query)
        return status, _json(data)

    def post_json(self, path: str, payload: Any, query: dict[str, str] | None = None) -> tuple[int, Any]:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        status, data = self.request("POST", path, query=query, body=body, content_type="application/json")
        return status, _json(data)

    def post_form(self, path: str, form: dict[str, str]) -> tuple[int, Any]:
        status, data = self.request("POST", path, body=urlencode(form).encode(),
                                    content_type="application/x-www-form-urlencoded")
        return status, _json(data)

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise HttpError(f"not JSON: {data[:200]!r}") from exc
