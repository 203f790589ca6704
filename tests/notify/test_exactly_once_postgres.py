"""Two worker processes on one PostgreSQL outbox (FOR UPDATE SKIP LOCKED): they never claim the
same row, and when one is killed mid-batch the other takes its rows over after the lease, with
each message delivered once at the fake WeChat (which de-duplicates on client_msg_id)."""

from __future__ import annotations

import pytest

from tests.notify.conftest import queue_bills, rows
from tests.notify.fake_providers import fake_wechat
from tests.notify.test_exactly_once import BATCH, assert_each_delivered_once, start_worker, wait_for, workers


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_the_outbox_and_survive_a_kill(pg_url: str) -> None:
    count = 300
    queue_bills(pg_url, count, "wechat_template", "openid-{i}")
    with fake_wechat(delay_seconds=0.002) as api:
        a, b = start_worker(pg_url, api), start_worker(pg_url, api)
        api.kill_at = (a.pid, 150)
        with workers(a, b):
            assert wait_for(a) == -9
            assert wait_for(b) == 0, b.stderr.read().decode()[-2000:]
    assert_each_delivered_once(pg_url, api, count)
    # SKIP LOCKED: the two never claimed the same row; only rows of a's last batch were sent again
    assert 1 <= sum(api.attempts.values()) - count <= BATCH  # a was killed mid-send: its batch resent, absorbed
    assert max(r.attempts for r in rows(pg_url)) <= 2


@pytest.mark.postgres
def test_two_workers_never_claim_the_same_row(pg_url: str) -> None:
    count = 200
    queue_bills(pg_url, count, "wechat_template", "openid-{i}")
    with fake_wechat(delay_seconds=0.001) as api:
        a, b = start_worker(pg_url, api), start_worker(pg_url, api)
        with workers(a, b):
            assert (wait_for(a), wait_for(b)) == (0, 0)
    assert_each_delivered_once(pg_url, api, count)
    assert sum(api.attempts.values()) == count  # each message sent exactly once over the wire
    assert {r.attempts for r in rows(pg_url)} == {1}
