"""Exactly once with a provider that de-duplicates (WeChat's client_msg_id): a worker process killed
(SIGKILL) between the provider's acceptance and our record, and two workers on PostgreSQL, never
deliver a message twice and never lose one. Deliveries are counted at the fake provider."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.notify.conftest import queue_bills, rows
from tests.notify.fake_providers import FakeWeChat, fake_wechat

ROOT = Path(__file__).resolve().parents[2]
BATCH = 25


def start_worker(url: str, api: FakeWeChat, lease: float = 1.0) -> subprocess.Popen[bytes]:
    env = {**os.environ, "POWERDESK_DATABASE_URL": url, "POWERDESK_WECHAT_APP_ID": api.app_id,
           "POWERDESK_WECHAT_APP_SECRET": api.secret, "POWERDESK_WECHAT_API_BASE": api.base_url,
           "POWERDESK_NOTIFY_TIMEOUT": "15"}  # a loaded CI machine is not a provider outage
    for name in ("POWERDESK_SMS_ACCESS_KEY_SECRET", "POWERDESK_SMTP_HOST"):
        env.pop(name, None)
    command = [sys.executable, "-m", "channels.notify.cli", "run", "--drain", "--batch", str(BATCH),
               "--concurrency", "4", "--poll", "0.2", "--lease", str(lease)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@contextmanager
def workers(*processes: subprocess.Popen[bytes]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def wait_for(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(process.stderr.read().decode()[-2000:] if process.stderr else "timed out") from None


def assert_each_delivered_once(url: str, api: FakeWeChat, count: int) -> None:
    assert len(api.delivered) == count  # nothing lost, nothing twice (one per openid + key)
    recorded = rows(url)
    unsent = [(r.dedupe_key, r.status.value, r.attempts, r.last_error, r.next_attempt_at) for r in recorded
              if r.status.value != "sent"]
    assert len(recorded) == count and unsent == []
    assert {(r.recipient, r.dedupe_key) for r in recorded} == set(api.delivered)


def test_a_worker_killed_between_send_and_record_neither_loses_nor_doubles(db_url: str) -> None:
    count = 120
    queue_bills(db_url, count, "wechat_template", "openid-{i}")
    with fake_wechat(delay_seconds=0.002) as api:
        first = start_worker(db_url, api)
        api.kill_at = (first.pid, 50)
        with workers(first):
            assert wait_for(first) == -9  # SIGKILL, mid-batch
        assert len(api.delivered) == 50
        unrecorded = [r for r in rows(db_url) if r.status.value == "pending" and r.claim_token]
        assert unrecorded  # the killed batch: some delivered at WeChat, none recorded
        second = start_worker(db_url, api, lease=5.0)  # its own lease renewed with room to spare
        with workers(second):
            assert wait_for(second) == 0, second.stderr.read().decode()[-2000:]
    assert_each_delivered_once(db_url, api, count)
    resent = [key for key, n in api.attempts.items() if n > 1]
    assert 1 <= len(resent) <= BATCH  # the crash window was hit, and only the killed batch was resent
