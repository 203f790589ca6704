"""The worker end to end on a real database and the local fake providers: what is recorded, the
retries and their back-off, the give-up, quiet hours, the daily cap, opt-in kinds, and the
WeChat → SMS fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from billing_core.db.engine import session_scope
from billing_core.operations.notifications import insight_rows
from billing_core.operations.outbox import opt_in, queue_new
from channels.notify.policy import POLICY_PATH, PolicyError, load_policy, parse_policy
from channels.notify.sms_aliyun import AliyunSmsSender
from channels.notify.wechat_template import WeChatTemplateSender
from channels.notify.worker import OutboxWorker
from tests.notify.conftest import DAYTIME, POLICY, add_customer, bill_rows, queue_bills, rows
from tests.notify.fake_providers import FakeAliyunSms, FakeWeChat, fake_aliyun_sms, fake_wechat

NIGHT = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai


def worker(url: str, wechat: FakeWeChat | None = None, sms: FakeAliyunSms | None = None, **options) -> OutboxWorker:
    senders = {}
    if wechat is not None:
        senders["wechat_template"] = WeChatTemplateSender(wechat.app_id, wechat.secret, wechat.base_url, POLICY,
                                                          timeout=1)
    if sms is not None:
        senders["sms"] = AliyunSmsSender(sms.access_key_id, sms.access_key_secret, "南方电网", sms.base_url, POLICY,
                                         timeout=1)
    return OutboxWorker(senders, POLICY, url=url, batch_size=50, concurrency=4, seed=1, **options)


def test_delivered_rows_keep_the_providers_answer(db_url: str) -> None:
    queue_bills(db_url, 3, "wechat_template", "openid-{i}")
    with fake_wechat() as api:
        w = worker(db_url, wechat=api)
        report = w.run_once(now=DAYTIME)
        w.close()
    assert report.claimed == 3 and report.outcomes == {"sent": 3}
    assert len(api.delivered) == 3
    for row in rows(db_url):
        assert row.status.value == "sent" and row.sent_at is not None and row.attempts == 1
        assert row.provider_response["code"] == "0" and row.provider_message_id
        assert row.claim_token is None and row.claimed_until is None


def test_retries_back_off_exponentially_then_give_up(db_url: str) -> None:
    queue_bills(db_url, 1, "sms", "13800138000")
    with fake_aliyun_sms(limit_next=100) as api:
        w = worker(db_url, sms=api)
        delays = []
        for _ in range(POLICY.max_attempts):
            before = datetime.now(UTC)
            w.run_once(now=DAYTIME)
            row = rows(db_url)[0]
            if row.status.value == "pending":
                delays.append((row.next_attempt_at - before).total_seconds())
                with session_scope(db_url) as session:  # make it due again now
                    session.get(type(row), row.id).next_attempt_at = None
        w.close()
    row = rows(db_url)[0]
    assert row.status.value == "failed" and row.attempts == POLICY.max_attempts
    assert row.last_error.startswith(f"gave up after {POLICY.max_attempts} attempts")
    assert row.provider_response["code"] == "isv.BUSINESS_LIMIT_CONTROL"
    assert len(delays) == POLICY.max_attempts - 1
    assert 25 < delays[0] < 35 and 50 < delays[1] < 70 and 100 < delays[2] < 140  # 30 s, 60 s, 120 s ±10 %
    assert api.delivered == []


def test_a_permanent_refusal_fails_at_once(db_url: str) -> None:
    queue_bills(db_url, 1, "sms", "12345")
    with fake_aliyun_sms() as api:
        w = worker(db_url, sms=api)
        w.run_once(now=DAYTIME)
        w.close()
    row = rows(db_url)[0]
    assert row.status.value == "failed" and row.attempts == 1
    assert row.last_error.startswith("isv.MOBILE_NUMBER_ILLEGAL")


def test_no_sms_in_quiet_hours_but_wechat_goes_out(db_url: str) -> None:
    queue_bills(db_url, 1, "sms", "13800138000")
    queue_bills(db_url, 1, "wechat_template", "openid-{i}", start=2)
    with fake_aliyun_sms() as sms, fake_wechat() as wechat:
        w = worker(db_url, wechat=wechat, sms=sms)
        w.run_once(now=NIGHT)
        w.close()
    sms_row, wechat_row = rows(db_url)
    assert sms.delivered == [] and len(wechat.delivered) == 1
    assert sms_row.status.value == "pending" and sms_row.attempts == 0 and sms_row.last_error == "quiet_hours"
    assert sms_row.next_attempt_at == datetime(2026, 12, 5, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert wechat_row.status.value == "sent"


def test_the_daily_cap_defers_the_rest_to_tomorrow(db_url: str) -> None:
    account = "440100000001"
    many = []
    for n in range(POLICY.daily_cap + 2):
        for row in bill_rows(account, 100 + n, {"wechat_template": "openid-x"}):
            row["bill_id"] = None
            many.append(row)
    with session_scope(db_url) as session:
        queue_new(session, many)
    with fake_wechat() as api:
        w = worker(db_url, wechat=api)
        w.run_once(now=DAYTIME)
        w.close()
    statuses = [r.status.value for r in rows(db_url)]
    assert statuses.count("sent") == POLICY.daily_cap and len(api.delivered) == POLICY.daily_cap
    deferred = [r for r in rows(db_url) if r.status.value == "pending"]
    assert len(deferred) == 2 and all(r.last_error == "daily_cap" and r.attempts == 0 for r in deferred)
    assert deferred[0].next_attempt_at == datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # midnight Shanghai


def opt_in_row(account: str, kind: str) -> dict:
    """What the insights hook queues (body and figures as the billing core's insight code wrote them)."""
    return insight_rows(kind=kind, account_no=account, ref="2026-12", channels=["wechat_template"],
                        body="您本月1日至3日日均用电18.6千瓦时，为近12个月同期平均的2.4倍，请留意。",
                        payload={"daily_kwh": "18.6", "ratio": "2.4"},
                        reachable={"wechat_template": f"openid-{account}"})[0]


def test_the_insights_hook_refuses_a_kind_that_is_no_insight() -> None:
    with pytest.raises(ValueError, match="kind"):
        insight_rows(kind="bill_issued", account_no="440100000001", ref="x", body="", payload={},
                     channels=["sms"], reachable={"sms": "13800138000"})


def test_opt_in_kinds_reach_only_customers_who_asked(db_url: str) -> None:
    with session_scope(db_url) as session:
        queue_new(session, [opt_in_row("440100000011", "anomaly_alert"), opt_in_row("440100000012", "anomaly_alert")])
        assert opt_in(session, "440100000011", "anomaly_alert") is True
        assert opt_in(session, "440100000011", "anomaly_alert") is False
    with fake_wechat() as api:
        w = worker(db_url, wechat=api)
        w.run_once(now=DAYTIME)
        w.close()
    asked, never = rows(db_url)
    assert asked.status.value == "sent" and never.status.value == "skipped" and never.last_error == "not_opted_in"
    assert list(api.delivered) == [("openid-440100000011", "anomaly_alert:440100000011:2026-12:wechat_template")]
    body = api.delivered[("openid-440100000011", "anomaly_alert:440100000011:2026-12:wechat_template")]
    assert body["template_id"] == "TPL_ANOMALY" and "2.4倍" in body["data"]["first"]["value"]


def test_an_unfollowed_wechat_customer_gets_the_notice_by_sms(db_url: str) -> None:
    add_customer(db_url, "440100000001", phone="13900139000", openid="gone")
    queue_bills(db_url, 1, "wechat_template", "gone")
    with fake_wechat(unsubscribed={"gone"}) as wechat, fake_aliyun_sms() as sms:
        w = worker(db_url, wechat=wechat, sms=sms)
        w.run_once(now=DAYTIME)
        w.run_once(now=DAYTIME)
        w.close()
    original, fallback = rows(db_url)
    assert original.status.value == "failed" and original.provider_response["code"] == "43004"
    assert fallback.channel.value == "sms" and fallback.dedupe_key == "bill_issued:1:sms"
    assert fallback.status.value == "sent" and fallback.body == original.body
    assert [p["PhoneNumbers"] for p in sms.delivered] == ["13900139000"]


def test_the_fallback_is_not_queued_when_the_cycle_already_queued_an_sms(db_url: str) -> None:
    add_customer(db_url, "440100000001", phone="13900139000", openid="gone")
    queue_bills(db_url, 1, "wechat_template", "gone")
    queue_bills(db_url, 1, "sms", "13900139000")
    with fake_wechat(unsubscribed={"gone"}) as wechat, fake_aliyun_sms() as sms:
        w = worker(db_url, wechat=wechat, sms=sms)
        w.run_once(now=DAYTIME)
        w.run_once(now=DAYTIME)
        w.close()
    assert len(rows(db_url)) == 2 and len(sms.delivered) == 1


def test_a_channel_without_a_sender_stays_queued(db_url: str) -> None:
    queue_bills(db_url, 1, "email", "zhang@example.com")
    with fake_wechat() as api:
        w = worker(db_url, wechat=api)
        assert w.run_once(now=DAYTIME).claimed == 0
        w.close()
    assert rows(db_url)[0].status.value == "pending"


def test_a_malformed_policy_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
    data["quiet_hours"]["channels"] = ["fax"]
    with pytest.raises(PolicyError, match=r"policy\.yaml: quiet_hours\.channels"):
        parse_policy(data)
    data = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
    data["retry"]["max_attempts"] = 0
    bad = tmp_path / "notify.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"notify\.yaml: retry\.max_attempts"):
        load_policy(bad)
    del data["templates"]["bill_issued_v1"]["sms_fields"]
    data["retry"]["max_attempts"] = 3
    with pytest.raises(PolicyError, match=r"templates\.bill_issued_v1\.sms_fields"):
        parse_policy(data)


def test_every_template_the_billing_core_writes_has_provider_templates() -> None:
    from billing_core.operations.notifications import BILL_TEMPLATE, DUNNING_TEMPLATE
    from billing_core.operations.policy import load_policy as billing_policy

    written = {BILL_TEMPLATE} | {DUNNING_TEMPLATE.format(tier=t.code) for t in billing_policy().dunning.tiers}
    assert written <= set(POLICY.templates)
    assert {"bill_issued", *(f"dunning_{t.code}" for t in billing_policy().dunning.tiers)} <= set(POLICY.kinds)
    assert timedelta(seconds=POLICY.lease_seconds) > timedelta(seconds=10)
