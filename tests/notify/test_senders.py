"""Each sender against a local server speaking the provider's protocol, including its errors and
time-outs: what reaches the provider, and how each answer is classified."""

from __future__ import annotations

import json

from billing_core.operations.outbox import ClaimedMessage
from channels.notify.email_smtp import SmtpEmailSender
from channels.notify.sms_aliyun import AliyunSmsSender, sign
from channels.notify.wechat_template import WeChatTemplateSender
from tests.notify.conftest import POLICY, bill_rows
from tests.notify.fake_providers import fake_aliyun_sms, fake_wechat, smtp_server


def message(channel: str, recipient: str, key: str = "bill_issued:1") -> ClaimedMessage:
    row = bill_rows("440100000001", 1, {channel: recipient})[0]
    return ClaimedMessage(id=1, dedupe_key=f"{key}:{channel}", channel=channel, kind=row["kind"],
                          account_no=row["account_no"], recipient=recipient, template=row["template"],
                          body=row["body"], payload=row["payload"], attempts=1, claim_token="t")


def wechat_sender(api, timeout: float = 2.0) -> WeChatTemplateSender:
    return WeChatTemplateSender(api.app_id, api.secret, api.base_url, POLICY, timeout=timeout)


def test_wechat_template_send_carries_the_billing_figures_and_caches_the_token() -> None:
    with fake_wechat() as api:
        sender = wechat_sender(api)
        first = sender.send(message("wechat_template", "openid-1"))
        second = sender.send(message("wechat_template", "openid-2", key="bill_issued:2"))
    assert (first.verdict, second.verdict) == ("sent", "sent")
    assert api.token_requests == 1  # cached
    body = api.delivered[("openid-1", "bill_issued:1:wechat_template")]
    assert body["template_id"] == "TPL_BILL_ISSUED"
    assert body["data"]["keyword3"] == {"value": "242.55"} and body["data"]["keyword4"] == {"value": "2026-12-20"}
    assert "242.55元" in body["data"]["first"]["value"]
    assert first.provider_message_id == str(body["msgid"])


def test_wechat_refreshes_an_expired_token_once_and_resends() -> None:
    with fake_wechat() as api:
        sender = wechat_sender(api)
        assert sender.send(message("wechat_template", "o1")).verdict == "sent"
        api.expire_token()  # 40001 on the cached token
        result = sender.send(message("wechat_template", "o2", key="k2"))
    assert result.verdict == "sent" and api.token_requests == 2
    assert ("o2", "k2:wechat_template") in api.delivered


def test_wechat_stable_token_is_shared_by_several_senders() -> None:
    with fake_wechat() as api:
        senders = [WeChatTemplateSender(api.app_id, api.secret, api.base_url, POLICY, timeout=2, stable_token=True)
                   for _ in range(2)]
        results = [s.send(message("wechat_template", f"o{i}", key=f"k{i}")) for i, s in enumerate(senders)]
        api.expire_token()  # rotated at WeChat: each sender fetches the current one, without force_refresh
        results += [s.send(message("wechat_template", f"p{i}", key=f"j{i}")) for i, s in enumerate(senders)]
    assert [r.verdict for r in results] == ["sent"] * 4
    assert api.token_requests == 0 and api.stable_token_requests == 4 and api.token == "TOKEN-2"


def test_wechat_dedupes_on_client_msg_id_so_a_resend_is_not_delivered_twice() -> None:
    with fake_wechat() as api:
        sender = wechat_sender(api)
        a = sender.send(message("wechat_template", "o1"))
        b = sender.send(message("wechat_template", "o1"))
    assert a.verdict == b.verdict == "sent" and a.provider_message_id == b.provider_message_id
    assert api.attempts["bill_issued:1:wechat_template"] == 2 and len(api.delivered) == 1


def test_wechat_unsubscribed_busy_bad_template_and_timeout() -> None:
    with fake_wechat(unsubscribed={"gone"}, busy_next=1) as api:
        sender = wechat_sender(api, timeout=0.3)
        busy = sender.send(message("wechat_template", "o1"))
        gone = sender.send(message("wechat_template", "gone"))
        bad = message("wechat_template", "o1")
        bad = ClaimedMessage(**{**bad.__dict__, "template": "no_such_template"})
        unknown = sender.send(bad)
        api.hang_seconds = 1.0
        slow = sender.send(message("wechat_template", "o3", key="k3"))
    assert (busy.verdict, busy.code) == ("retry", "-1")
    assert (gone.verdict, gone.code) == ("fallback_sms", "43004")
    assert (unknown.verdict, unknown.code) == ("failed", "no_template")
    assert (slow.verdict, slow.code) == ("retry", "timeout")


def sms_sender(api, secret: str | None = None, timeout: float = 2.0) -> AliyunSmsSender:
    return AliyunSmsSender(api.access_key_id, secret or api.access_key_secret, "南方电网", api.base_url, POLICY,
                           timeout=timeout)


def test_aliyun_send_sms_is_signed_as_the_gateway_checks_it() -> None:
    with fake_aliyun_sms() as api:
        result = sms_sender(api).send(message("sms", "13800138000"))
    assert (result.verdict, result.code) == ("sent", "OK") and result.provider_message_id == "000001^0"
    sent = api.delivered[0]
    assert sent["TemplateCode"] == "SMS_BILL_ISSUED" and sent["OutId"] == "bill_issued:1:sms"
    assert json.loads(sent["TemplateParam"]) == {"account": "440100000001", "period": "2026-11",
                                                 "amount": "242.55", "due": "2026-12-20"}


def test_aliyun_signature_matches_a_published_vector() -> None:
    # The worked example of Alibaba Cloud's RPC signature documentation (secret "testsecret").
    params = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
              "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26"}
    assert sign(params, "testsecret", method="GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_errors_are_classified() -> None:
    with fake_aliyun_sms(limit_next=1) as api:
        limited = sms_sender(api).send(message("sms", "13800138000"))
        wrong_key = sms_sender(api, secret="not-the-secret").send(message("sms", "13800138000"))
        bad_phone = sms_sender(api).send(message("sms", "12345"))
        api.hang_seconds = 1.0
        slow = sms_sender(api, timeout=0.3).send(message("sms", "13800138000"))
    assert (limited.verdict, limited.code) == ("retry", "isv.BUSINESS_LIMIT_CONTROL")
    assert (wrong_key.verdict, wrong_key.code) == ("failed", "SignatureDoesNotMatch")
    assert (bad_phone.verdict, bad_phone.code) == ("failed", "isv.MOBILE_NUMBER_ILLEGAL")
    assert (slow.verdict, slow.code) == ("retry", "timeout")
    assert api.delivered == []


def test_smtp_delivers_the_text_and_classifies_refusals() -> None:
    with smtp_server() as inbox:
        inbox.refuse.add("nobody@example.com")
        inbox.defer.add("later@example.com")
        sender = SmtpEmailSender(inbox.host, inbox.port, "billing@utility.example", POLICY, timeout=2)
        ok = sender.send(message("email", "zhang@example.com"))
        refused = sender.send(message("email", "nobody@example.com"))
        deferred = sender.send(message("email", "later@example.com"))
        sender.close()
    assert ok.verdict == "sent"
    mail = inbox.messages[0]
    assert mail["Subject"] == "电费账单通知" and mail["Message-ID"] == "<bill_issued.1.email@powerdesk>"
    assert "242.55元" in mail.get_content()
    assert (refused.verdict, refused.code) == ("failed", "550")
    assert (deferred.verdict, deferred.code) == ("retry", "451")
    assert len(inbox.messages) == 1


def test_smtp_server_down_is_a_retry() -> None:
    from tests.servers.ports import free_port

    sender = SmtpEmailSender("127.0.0.1", free_port(), "billing@utility.example", POLICY, timeout=1)
    result = sender.send(message("email", "zhang@example.com"))
    assert (result.verdict, result.code) == ("retry", "transport")
