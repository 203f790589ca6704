"""The senders' keep-alive transport: a connection the server closed while idle is replaced and
the request goes through; a refused connection is a transport error, not a hang."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from channels.notify.http import HttpError, KeepAliveHttp
from tests.servers.ports import free_port


@contextmanager
def one_answer_per_connection() -> Iterator[tuple[str, list[int]]]:
    """A server that answers one request per connection, then closes it without saying so (as an
    idle keep-alive time-out does)."""
    listener = socket.create_server(("127.0.0.1", 0))
    served: list[int] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                body = b'{"errcode": 0}'
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                   + str(len(body)).encode() + b"\r\n\r\n" + body)
                served.append(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", served
    finally:
        listener.close()


def test_a_connection_closed_by_the_server_is_replaced() -> None:
    with one_answer_per_connection() as (url, served):
        http = KeepAliveHttp(url, timeout=2)
        answers = [http.get_json("/cgi-bin/token", {"a": "b"})[1] for _ in range(3)]
        http.close()
    assert answers == [{"errcode": 0}] * 3 and len(served) == 3


def test_a_refused_connection_is_a_transport_error() -> None:
    http = KeepAliveHttp(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(HttpError, match="ConnectionRefused"):
        http.get_json("/cgi-bin/token", {})
