"""`powerdesk serve` on SIGTERM: new connections refused at once, the request in flight still answered.

A real `serve` process; the request in flight is a CSAT rating whose body the client is still
sending when the signal arrives (the app's handler is waiting for it), so the test controls
exactly when the request ends — after the signal — without waiting for a model to load.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alembic import command

from billing_core.db.schema import migration_chains
from tests.servers.ports import free_port, wait_until

POWERDESK = Path(sys.executable).with_name("powerdesk")


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_drains_the_request_in_flight_and_refuses_new_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    for _name, config in migration_chains(url):
        command.upgrade(config, "head")
    port = free_port()
    env = {**os.environ, "POWERDESK_VAR_DIR": str(tmp_path), "POWERDESK_DATABASE_URL": url,
           "POWERDESK_SHUTDOWN_GRACE_SECONDS": "20"}
    env.pop("POWERDESK_REDIS_URL", None)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([str(POWERDESK), "serve", "--no-warm", "--port", str(port), "--log-level", "warning"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError((tmp_path / "serve.log").read_text(errors="replace"))
            return httpx.get(base + "/healthz", timeout=2).status_code == 200

        wait_until(healthy, 60, "powerdesk serve")
        created = httpx.post(base + "/api/chat/conversations", timeout=10).json()
        body = json.dumps({"score": 5}).encode()
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        client.sendall(
            f"POST /api/chat/conversations/{created['conversation_id']}/csat HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"X-Conversation-Token: {created['conversation_token']}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:4])
        time.sleep(0.3)  # the server has the headers and is waiting for the rest of the body

        process.send_signal(signal.SIGTERM)
        wait_until(lambda: _refused(port), 10, "the listening socket to close")
        assert process.poll() is None  # still draining the request in flight

        client.sendall(body[4:])
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = client.recv(65536)
            if not chunk:
                break
            response += chunk
        client.close()
        head, _, payload = response.partition(b"\r\n\r\n")
        # The handler ran after the signal and answered (no transcript yet: nothing was said, so 404
        # with its own message) — the connection was not cut.
        assert head.startswith(b"HTTP/1.1 404"), response
        assert "会话不存在" in json.loads(payload)["detail"]
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def test_a_negative_grace_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.settings import shutdown_grace_seconds

    monkeypatch.setenv("POWERDESK_SHUTDOWN_GRACE_SECONDS", "-1")
    with pytest.raises(ValueError, match="POWERDESK_SHUTDOWN_GRACE_SECONDS"):
        shutdown_grace_seconds()
    monkeypatch.setenv("POWERDESK_SHUTDOWN_GRACE_SECONDS", "2.5")
    assert shutdown_grace_seconds() == 2.5
