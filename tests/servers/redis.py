"""Start a real, throw-away redis-server (Debian's package) for tests.

`make test` installs the binary (tests/servers/install.sh); a missing binary is a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers.ports import free_port, wait_until


@dataclass
class RedisServer:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _start(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: run `make test` (it installs Debian's redis-server)")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--save", "", "--protected-mode", "yes"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ping(port: int) -> bool:
    import redis

    return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5).ping())


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A running Redis with append-only persistence in a temp dir; removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="powerdesk-redis-"))
    port = free_port()
    server = RedisServer(f"redis://127.0.0.1:{port}/0", port, data_dir, _start(port, data_dir))
    try:
        wait_until(lambda: _ping(port), 15, "redis-server")
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def restart(server: RedisServer) -> None:
    """Stop and start the same server on the same port and data dir (state must survive)."""
    server.stop()
    server.process = _start(server.port, server.data_dir)
    wait_until(lambda: _ping(server.port), 15, "redis-server after restart")
