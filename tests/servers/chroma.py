"""Start a real, throw-away Chroma server (the `chroma` CLI from the venv) for tests.

The binary ships with the chromadb package in the venv; a missing binary is a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers.ports import free_port, wait_until


@dataclass
class ChromaServer:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def chroma_binary() -> Path:
    binary = Path(sys.executable).parent / "chroma"
    if not binary.exists():
        found = shutil.which("chroma")
        if found is None:
            raise RuntimeError("chroma CLI not found next to the venv python: install chromadb (make test)")
        binary = Path(found)
    return binary


def _heartbeat(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1.0).status_code == 200


@contextmanager
def chroma_server() -> Iterator[ChromaServer]:
    """A running Chroma server with its data in a temp dir; stopped and removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="powerdesk-chroma-"))
    port = free_port()
    process = subprocess.Popen(
        [str(chroma_binary()), "run", "--path", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = ChromaServer(f"http://127.0.0.1:{port}", port, data_dir, process)
    try:
        wait_until(lambda: _heartbeat(port), 30, "chroma server")
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
