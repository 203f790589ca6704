"""Free loopback ports, readiness waits and socket counts for the throw-away servers the tests start."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

TCP_ESTABLISHED, TCP_LISTEN = "01", "0A"  # socket states as /proc/net/tcp writes them


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it returns True; raise with `what` named if `timeout` passes."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the server is still starting
            last_error = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s (last error: {last_error})")


def tcp_socket_inodes(port: int, state: str) -> list[str]:
    """Inodes of the TCP sockets with local `port` in `state` (Linux /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.append(fields[9])
    return found


def listening_sockets(port: int) -> int:
    """How many sockets listen on `port`: one per `powerdesk serve` worker (SO_REUSEPORT)."""
    return len(tcp_socket_inodes(port, TCP_LISTEN))
