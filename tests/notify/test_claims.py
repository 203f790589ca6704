"""The claim itself: leases, their renewal, the claim-token guard on records, and two workers on
one SQLite file (the single-writer fallback) — on the real database, no provider mocks."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from billing_core.db.engine import session_scope
from billing_core.operations import outbox
from billing_core.operations.outbox import Outcome
from channels.notify.wechat_template import WeChatTemplateSender
from channels.notify.worker import OutboxWorker
from tests.notify.conftest import DAYTIME, POLICY, queue_bills, rows
from tests.notify.fake_providers import fake_wechat


def test_a_lease_hides_rows_until_it_ends(db_url: str) -> None:
    queue_bills(db_url, 3, "sms", "13800138000")
    with session_scope(db_url) as session:
        first = outbox.claim(session, 10, lease_seconds=60, now=DAYTIME)
        assert len(first) == 3 and {m.attempts for m in first} == {1}
        assert outbox.claim(session, 10, lease_seconds=60, now=DAYTIME + timedelta(seconds=59)) == []
        again = outbox.claim(session, 10, lease_seconds=60, now=DAYTIME + timedelta(seconds=61))
    assert [m.id for m in again] == [m.id for m in first] and {m.attempts for m in again} == {2}
    assert again[0].claim_token != first[0].claim_token


def test_a_stale_claim_cannot_overwrite_the_new_owners_row(db_url: str) -> None:
    queue_bills(db_url, 1, "sms", "13800138000")
    with session_scope(db_url) as session:
        (stale,) = outbox.claim(session, 1, lease_seconds=1, now=DAYTIME)
        (fresh,) = outbox.claim(session, 1, lease_seconds=60, now=DAYTIME + timedelta(seconds=2))
        outbox.record(session, [Outcome(stale.id, stale.claim_token, "failed", error="stale worker")])
        assert rows(db_url)[0].status.value == "pending" and rows(db_url)[0].claim_token == fresh.claim_token
        # a send that did happen is recorded even from a stale claim (the message *was* sent)
        outbox.record(session, [Outcome(stale.id, stale.claim_token, "sent", provider_message_id="m1")])
        outbox.record(session, [Outcome(fresh.id, fresh.claim_token, "failed", error="late")])
    (row,) = rows(db_url)
    assert row.status.value == "sent" and row.provider_message_id == "m1" and row.last_error is None


def wechat_worker(url: str, api, lease: float = 60.0) -> OutboxWorker:
    sender = WeChatTemplateSender(api.app_id, api.secret, api.base_url, POLICY, timeout=5)
    return OutboxWorker({"wechat_template": sender}, POLICY, url=url, batch_size=10, concurrency=2,
                        lease_seconds=lease, poll_seconds=0.05)


def test_the_lease_is_renewed_while_a_slow_provider_holds_the_batch(db_url: str) -> None:
    queue_bills(db_url, 2, "wechat_template", "openid-{i}")
    with fake_wechat(hang_seconds=3.0) as api:
        slow = wechat_worker(db_url, api, lease=1.5)
        thread = threading.Thread(target=slow.run_once)
        thread.start()
        while not api.attempts and thread.is_alive():  # steal only once the worker holds the batch
            time.sleep(0.01)
        stolen = []
        while thread.is_alive():
            with session_scope(db_url) as session:
                stolen += outbox.claim(session, 10, lease_seconds=1.5)
            thread.join(timeout=0.1)
        slow.close()
    assert stolen == [] and sum(api.attempts.values()) == 2
    assert [r.status.value for r in rows(db_url)] == ["sent", "sent"]


def test_two_workers_on_one_sqlite_file_never_take_the_same_row(db_url: str) -> None:
    count = 200
    queue_bills(db_url, count, "wechat_template", "openid-{i}")
    with fake_wechat(delay_seconds=0.002) as api:
        workers = [wechat_worker(db_url, api) for _ in range(2)]
        threads = [threading.Thread(target=w.run, kwargs={"drain": True}) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for w in workers:
            w.close()
    assert sum(api.attempts.values()) == count and len(api.delivered) == count
    assert all(w.totals["sent"] > 0 for w in workers)  # both took part
    assert {r.status.value for r in rows(db_url)} == {"sent"}


def test_outstanding_counts_leased_and_due_rows_at_one_instant(db_url: str) -> None:
    queue_bills(db_url, 2, "sms", "13800138000")
    with session_scope(db_url) as session:
        outbox.claim(session, 1, lease_seconds=60, now=DAYTIME)  # one row leased until DAYTIME + 60 s
        assert outbox.outstanding(session, now=DAYTIME) == 2  # one leased, one due
        assert outbox.claim(session, 10, lease_seconds=60, now=DAYTIME + timedelta(seconds=1))  # the due one
        assert outbox.outstanding(session, now=DAYTIME + timedelta(seconds=59)) == 2  # both leased
        # a lease that has just ended: its row is no longer leased but due, so it still counts
        assert outbox.outstanding(session, now=DAYTIME + timedelta(seconds=61)) == 2
        assert outbox.outstanding(session, channels=["wechat_template"], now=DAYTIME) == 0


def test_a_draining_worker_outlives_a_lease_that_ends_between_its_claim_and_its_check(
        db_url: str, monkeypatch) -> None:
    """The race behind a red CI run: another worker's lease ended after this worker's empty claim
    and before its drain check, so the check saw no lease, the worker exited and left the rows
    pending. Here a slow machine is made certain: the first empty claim returns only after the
    lease has ended."""
    count = 5
    queue_bills(db_url, count, "wechat_template", "openid-{i}")
    with session_scope(db_url) as session:  # a worker that dies holding every row for 0.5 s
        assert len(outbox.claim(session, count, lease_seconds=0.5)) == count
    real_claim = outbox.claim
    empty_claims = []

    def slow_after_an_empty_claim(*args, **kwargs):
        claimed = real_claim(*args, **kwargs)
        if not claimed and not empty_claims:
            empty_claims.append(time.monotonic())
            time.sleep(0.8)  # the dead worker's lease ends here
        return claimed

    monkeypatch.setattr(outbox, "claim", slow_after_an_empty_claim)
    with fake_wechat() as api:
        survivor = wechat_worker(db_url, api)
        survivor.poll_seconds = 0.05
        totals = survivor.run(drain=True)
        survivor.close()
    assert empty_claims  # the race window was hit
    assert totals["sent"] == count and len(api.delivered) == count
    assert {r.status.value for r in rows(db_url)} == {"sent"}
