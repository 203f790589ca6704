"""`powerdesk serve --workers N`: several worker processes only with Redis-shared state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from channels.serve_cli import app
from tests.channels.serve_process import web_conversation
from tests.servers.ports import TCP_ESTABLISHED, tcp_socket_inodes

POWERDESK = Path(sys.executable).with_name("powerdesk")


def test_more_than_one_worker_without_redis_is_refused_naming_the_setting(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("POWERDESK_REDIS_URL", raising=False)
    result = CliRunner().invoke(app, ["--workers", "2", "--port", "1"])
    assert result.exit_code == 2
    assert "POWERDESK_REDIS_URL" in result.output


def test_zero_workers_is_bad_input() -> None:
    env = {k: v for k, v in os.environ.items() if k != "POWERDESK_REDIS_URL"}
    done = subprocess.run([str(POWERDESK), "serve", "--workers", "0"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "--workers" in done.stderr


def test_two_workers_share_one_conversation_through_redis(tmp_path: Path) -> None:
    """Each turn on a new connection (the kernel picks a worker): verification and slots carry over."""
    import httpx
    from sqlalchemy import select

    from billing_core.db.engine import make_engine
    from billing_core.db.models import Bill, Customer
    from tests.servers.ports import free_port, wait_until
    from tests.servers.redis import redis_server

    with redis_server() as redis:
        env = {**os.environ, "POWERDESK_VAR_DIR": str(tmp_path), "POWERDESK_REDIS_URL": redis.url,
               "POWERDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.db'}"}
        subprocess.run([str(POWERDESK), "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([str(POWERDESK), "demo", "seed", "--customers", "10", "--seed", "5"], env=env,
                       check=True, capture_output=True)
        engine = make_engine(env["POWERDESK_DATABASE_URL"])
        with engine.connect() as connection:
            account, phone, customer_id = connection.execute(
                select(Customer.account_no, Customer.phone, Customer.id)
                .where(Customer.phone.is_not(None)).order_by(Customer.account_no)).first()
            period = connection.execute(select(Bill.period).where(Bill.customer_id == customer_id)
                                        .order_by(Bill.period.desc())).scalar()
        engine.dispose()
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        process = subprocess.Popen([str(POWERDESK), "serve", "--port", str(port), "--workers", "2"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: process.poll() is None and httpx.get(url + "/healthz", timeout=2).status_code == 200,
                       180, "powerdesk serve --workers 2")
            year, month = period.split("-")
            cid, token = web_conversation(url)
            texts = [f"户号{account}，手机号后四位{phone[-4:]}", f"{int(year)}年{int(month)}月电费多少",
                     "交了没有", "上个月的呢", "电费怎么交", "我的户号是多少"]
            replies = []
            for text in texts:  # a new client per turn: a new connection, so either worker may answer
                with httpx.Client(base_url=url, timeout=120) as client:
                    response = client.post(f"/api/chat/conversations/{cid}/messages?stream=false",
                                           json={"text": text}, headers=token)
                assert response.status_code == 200, response.text
                replies.append(response.json())
            # Verified once in the first turn; no later turn asks for the account again.
            assert all(r.get("awaiting") not in ("account_no", "last4") for r in replies[1:]), replies
            assert "lookup_bill" in replies[1]["actions"], replies[1]
        finally:
            process.terminate()
            process.wait(timeout=30)
            log.close()
        assert process.returncode is not None


def _established_on(port: int, pid: int) -> int:
    """How many ESTABLISHED TCP sockets with local `port` process `pid` holds (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return sum(1 for inode in tcp_socket_inodes(port, TCP_ESTABLISHED) if inode in inodes)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _healthz_requests(scrape: str) -> float:
    """powerdesk_http_requests_total of /healthz in one /metrics text, over every status."""
    total = 0.0
    for line in scrape.splitlines():
        if line.startswith("powerdesk_http_requests_total{") and 'route="/healthz"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_workers_share_long_lived_connections_evenly(tmp_path: Path) -> None:
    """Each worker listens on its own SO_REUSEPORT socket, so 40 keep-alive connections opened at
    once spread over both workers (with one shared socket a burst could land on one worker).

    One scrape of /metrics, answered by one worker, counts the requests of both: the workers write
    to this run's PROMETHEUS_MULTIPROC_DIR, which `serve` empties first (a stale file would break
    the scrape or add an earlier run's counts)."""
    import httpx

    from tests.servers.ports import free_port, listening_sockets, wait_until
    from tests.servers.redis import redis_server

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    with redis_server() as redis:
        env = {**os.environ, "POWERDESK_VAR_DIR": str(tmp_path), "POWERDESK_REDIS_URL": redis.url,
               "POWERDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'spread.db'}",
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        subprocess.run([str(POWERDESK), "db", "upgrade"], env=env, check=True, capture_output=True)
        port = free_port()
        log = (tmp_path / "serve.log").open("wb")
        process = subprocess.Popen([str(POWERDESK), "serve", "--port", str(port), "--workers", "2", "--no-warm"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        clients = [httpx.Client(base_url=url, timeout=30) for _ in range(40)]
        try:
            wait_until(lambda: process.poll() is None and listening_sockets(port) == 2, 180, "both workers listening")
            workers = [pid for pid in _children(process.pid)
                       if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
            assert len(workers) == 2, workers
            for client in clients:  # 40 connections, kept open
                assert client.get("/healthz").status_code == 200
            held = {pid: _established_on(port, pid) for pid in workers}
            assert sum(held.values()) == 40, (held, (tmp_path / "serve.log").read_text()[-2000:])
            busy = [count for count in held.values() if count]
            assert len(busy) == 2 and min(busy) >= 8, held  # binomial(40, ½) below 8: ~1 in 200,000
            scrape = httpx.get(url + "/metrics", timeout=30)
            assert scrape.status_code == 200, scrape.text
            assert _healthz_requests(scrape.text) == 40  # both workers' requests, not the scraped one's
            assert not (metrics_dir / "counter_999999.db").exists()
            writers = {f.stem.rsplit("_", 1)[1] for f in metrics_dir.glob("counter_*.db")}
            assert writers >= {str(pid) for pid in workers}, writers
        finally:
            for client in clients:
                client.close()
            process.terminate()
            process.wait(timeout=30)
            log.close()
        assert process.returncode == 0
        assert not [pid for pid in _children(process.pid)], "workers outlived the supervisor"
