"""From the billing core to the provider: a dunning pass writes the outbox on the real database
(SQLite and PostgreSQL), the worker delivers it, and every figure the fake providers receive is
the one the billing core recorded (the dunning action's amount owed and late fee)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.operations_models import DunningAction, OutboxNotification
from billing_core.operations.dunning_store import run_dunning
from channels.notify.sms_aliyun import AliyunSmsSender
from channels.notify.wechat_template import WeChatTemplateSender
from channels.notify.worker import OutboxWorker
from tests.billing.conftest import database_url, empty_database_url, session  # noqa: F401  (fixtures)
from tests.billing.test_dunning import seed_overdue
from tests.notify.conftest import DAYTIME, POLICY
from tests.notify.fake_providers import fake_aliyun_sms, fake_wechat


def test_dunning_reminders_reach_the_providers_with_the_billing_figures(session: Session, database_url: str) -> None:  # noqa: F811
    ids = seed_overdue(session)
    run_dunning(session, date(2026, 8, 20))
    session.commit()
    with fake_wechat() as wechat, fake_aliyun_sms() as sms:
        worker = OutboxWorker({
            "wechat_template": WeChatTemplateSender(wechat.app_id, wechat.secret, wechat.base_url, POLICY, timeout=2),
            "sms": AliyunSmsSender(sms.access_key_id, sms.access_key_secret, "南方电网", sms.base_url, POLICY, timeout=2),
        }, POLICY, url=database_url, concurrency=2)
        report = worker.run_once(now=DAYTIME)
        worker.close()
    assert report.outcomes == {"sent": 4}
    actions = {a.bill_id: a for a in session.scalars(select(DunningAction))}
    by_bill = {}
    for params in sms.delivered:
        by_bill.setdefault(params["OutId"].split(":")[1], json.loads(params["TemplateParam"]))
    shop = by_bill[str(ids["shop"])]
    assert Decimal(shop["owed"]) == actions[ids["shop"]].amount_owed == Decimal("6000.00")
    assert Decimal(shop["fee"]) == actions[ids["shop"]].late_fee == Decimal("36.00") and shop["days"] == "3"
    assert sms.delivered[0]["TemplateCode"] == "SMS_DUNNING_1"
    ((openid, _key), body), = wechat.delivered.items()
    assert openid == "wx-1" and body["template_id"] == "TPL_DUNNING"
    assert Decimal(body["data"]["keyword2"]["value"]) == actions[ids["home"]].amount_owed
    assert "242.55元" in body["data"]["first"]["value"]
    session.expire_all()
    assert {r.status.value for r in session.scalars(select(OutboxNotification))} == {"sent"}
