"""Run `powerdesk serve` as a real process on a free loopback port (browser, scale-out, benchmark)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers.ports import free_port, wait_until

POWERDESK = Path(sys.executable).with_name("powerdesk")


@dataclass
class ServeProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, as a crashed server would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def web_conversation(url: str) -> tuple[str, dict[str, str]]:
    """Start a web conversation on the service at `url`: its id and the header that carries its
    token, for API clients that keep no cookies (any process sharing the secret accepts it)."""
    response = httpx.post(url + "/api/chat/conversations", timeout=30)
    response.raise_for_status()
    created = response.json()
    return created["conversation_id"], {"X-Conversation-Token": created["conversation_token"]}


@contextmanager
def serve_process(env: dict[str, str], warm_up: bool = True, timeout: float = 120,
                  port: int | None = None) -> Iterator[ServeProcess]:
    """Start the service (on `port`, e.g. a load balancer's upstream, or a free one), wait for
    /healthz (and one warm-up turn so models are loaded)."""
    port = port or free_port()
    log_path = Path(tempfile.mkstemp(prefix="powerdesk-serve-", suffix=".log")[1])
    full_env = {**os.environ, **env}
    log_file = log_path.open("wb")
    process = subprocess.Popen([str(POWERDESK), "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env=full_env, stdout=log_file, stderr=subprocess.STDOUT)
    server = ServeProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"powerdesk serve exited: {server.log()}")
            return httpx.get(server.url + "/healthz", timeout=2).status_code == 200

        wait_until(healthy, timeout, "powerdesk serve")
        if warm_up:
            cid, headers = web_conversation(server.url)
            httpx.post(f"{server.url}/api/chat/conversations/{cid}/messages?stream=false", json={"text": "你好"},
                       headers=headers, timeout=timeout)
        yield server
    finally:
        server.stop()
        log_file.close()
        log_path.unlink(missing_ok=True)


def demo_customers(database_url: str) -> list[dict[str, str]]:
    """The seeded residential customers with a phone and a billed amount, by 户号: each with its
    account, phone tail (`last4`), latest billed period as a customer says it (`2026年5月`) and
    that bill's amount — what a test needs to verify a conversation and ask for a bill."""
    from sqlalchemy import select

    from billing_core.db.engine import make_engine
    from billing_core.db.models import Bill, Customer

    found: list[dict[str, str]] = []
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            for account, phone, cid in connection.execute(
                    select(Customer.account_no, Customer.phone, Customer.id)
                    .where(Customer.phone.is_not(None), Customer.category == "residential")
                    .order_by(Customer.account_no)):
                bill = connection.execute(select(Bill.period, Bill.amount).where(
                    Bill.customer_id == cid, Bill.amount > 0).order_by(Bill.period.desc())).first()
                if bill:
                    year, month = bill.period.split("-")
                    found.append({"account": account, "last4": phone[-4:], "amount": format(bill.amount, "f"),
                                  "period": f"{int(year)}年{int(month)}月"})
    finally:
        engine.dispose()
    return found
