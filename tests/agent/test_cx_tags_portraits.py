"""Tags, derived classes and portraits computed from the records (guide §8.3, §8.6): every tag names
the records behind it, the derived classes follow the policy's criteria, and the clustering picks k
by the stated silhouette criterion; `powerdesk cx tags refresh` / `portraits refresh` store them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from agent.experience.cli import app
from agent.experience.models import CustomerProfile, PortraitRun
from agent.experience.portraits import K_RANGE, TooFewCustomers, refresh_portraits
from agent.experience.tags import refresh_tags
from agent.experience.view import customer_experience
from agent.models import ConversationRecord, Outcome
from billing_core.db.models import Bill, Customer, WorkOrder, WorkOrderKind, WorkOrderStatus
from tests.agent.world import ACCOUNT_A, ACCOUNT_B, NOW, World, add_bill, add_customer
from tests.billing.conftest import postgres_server  # noqa: F401  (fixture)


def _conversation(session, cid: str, account: str, channel: str, days_ago: float, topic: str,  # type: ignore[no-untyped-def]
                  outcome: Outcome, csat: int | None = None) -> int:
    row = ConversationRecord(conversation_id=cid, channel=channel, account_no=account, brain="local", topic=topic,
                             intents=[topic], tickets=[], outcome=outcome, turn_count=2, csat_score=csat,
                             started_at=NOW - timedelta(days=days_ago))
    session.add(row)
    session.flush()
    return row.id


def add_records(world: World) -> dict[str, list[int]]:
    """A: two bill questions a day apart, two hand-offs rated 1 and 2, a complaint. B: two overdue bills.
    Twelve more customers with different usage, so there is something to cluster."""
    ids: dict[str, list[int]] = {}
    with world.sessions.begin() as session:
        ids["bill_questions"] = [
            _conversation(session, "t-1", ACCOUNT_A, "web", 40, "lookup_bill", Outcome.RESOLVED),
            _conversation(session, "t-2", ACCOUNT_A, "web", 39, "lookup_bill", Outcome.RESOLVED)]
        ids["handoffs"] = [
            _conversation(session, "t-3", ACCOUNT_A, "wechat", 10, "complaint", Outcome.TRANSFERRED, csat=1),
            _conversation(session, "t-4", ACCOUNT_A, "ivr", 9, "transfer_to_human", Outcome.TRANSFERRED, csat=2)]
        order = WorkOrder(no="WO202606160001", kind=WorkOrderKind.COMPLAINT, account_no=ACCOUNT_A,
                          status=WorkOrderStatus.OPEN, title="投诉：服务态度", channel="wechat",
                          created_at=NOW - timedelta(days=10), payload={"category": "service_attitude"})
        session.add(order)
        b = session.scalar(select(Customer).where(Customer.account_no == ACCOUNT_B))
        ids["overdue"] = [add_bill(session, b, "2026-02", "180", date(2026, 3, 15)).id,
                          add_bill(session, b, "2026-03", "170", date(2026, 4, 15)).id]
        for n in range(12):
            # The first has a 户号 with a leading zero, like the demo's (it must stay a string end to end).
            other = add_customer(session, f"{'0' if n == 0 else '4'}401000001{n:02d}", name="测试", phone=f"1370000{n:04d}",
                                 id_last4="0000", address="广州市海珠区江南大道 1 号")
            for period in ("2026-03", "2026-04", "2026-05"):
                add_bill(session, other, period, str(80 + n * n * 15), date(2026, 7, 15))
        ids["leading_zero"] = [_conversation(session, "t-5", "040100000100", "web", 3, "how_to_pay",
                                             Outcome.RESOLVED)]
        session.flush()
        ids["complaint"] = [order.id]
    return ids


@pytest.fixture
def records(world: World) -> dict[str, list[int]]:
    return add_records(world)


def _profile(world: World, account: str) -> CustomerProfile:
    with world.sessions() as session:
        return session.scalars(select(CustomerProfile).where(CustomerProfile.account_no == account)).one()


def test_tags_name_the_records_that_made_them(world: World, records: dict[str, list[int]]) -> None:
    check_tags(world, records)


def check_tags(world: World, records: dict[str, list[int]]) -> None:
    with world.sessions.begin() as session:
        result = refresh_tags(session, NOW)
    assert result.customers == 14 and result.by_class["long_overdue"] == 1
    a = _profile(world, ACCOUNT_A)
    tags = {t["code"]: t for t in a.tags}
    assert a.computed_at == NOW
    assert tags["bill_questions"]["value"] == 2
    assert tags["bill_questions"]["evidence"] == [{"kind": "bill_question", "ids": records["bill_questions"]}]
    assert tags["prefers_person"]["evidence"] == [{"kind": "handoff", "ids": records["handoffs"]}]
    assert tags["low_csat"]["label"] == "评价偏低（平均1.5分）"
    assert tags["complaint_category"]["evidence"] == [{"kind": "complaint", "ids": records["complaint"]}]
    assert "服务态度" in tags["complaint_category"]["label"]
    assert tags["multi_channel"]["value"] == 3 and tags["main_channel"]["dimension"] == "渠道特征"
    assert tags["payment_timeliness"]["label"] == "按时缴费"  # April paid 5 days before its due date
    assert {t["dimension"] for t in a.tags} == {"渠道特征", "用电行为", "业务交互", "服务诉求", "心理偏好"}
    assert a.classes == ["complaint_sensitive"] and a.features["repeat_contacts_12m"] == 1
    b = _profile(world, ACCOUNT_B)
    overdue = next(t for t in b.tags if t["code"] == "overdue")
    assert overdue["label"] == "逾期未缴2期" and overdue["evidence"][0]["ids"] == records["overdue"]
    assert b.classes == ["long_overdue"]
    zero = {t["code"]: t for t in _profile(world, "040100000100").tags}
    assert zero["main_channel"]["evidence"] == [{"kind": "conversation", "ids": records["leading_zero"]}]


def test_portraits_pick_k_by_silhouette_and_describe_clusters_in_chinese(world: World,
                                                                          records: dict[str, list[int]]) -> None:
    with world.sessions.begin() as session:
        with pytest.raises(TooFewCustomers, match="tags refresh"):
            refresh_portraits(session, NOW)
    with world.sessions.begin() as session:
        refresh_tags(session, NOW)
        result = refresh_portraits(session, NOW)
    assert set(result.scores) <= set(K_RANGE) and result.k == max(result.scores, key=result.scores.get)
    assert len(result.clusters) == result.k and sum(c["size"] for c in result.clusters) == 14
    assert all(c["label"] and not c["label"].isascii() for c in result.clusters)
    with world.sessions() as session:
        run = session.scalars(select(PortraitRun)).one()
        assert run.k == result.k and "silhouette" in run.criterion
        view = customer_experience(session, ACCOUNT_A)
        assert view is not None and view.portrait is not None and view.portrait.run_id == run.id
        assert [c.name for c in view.classes] == ["投诉敏感客户"]
        assert None not in session.scalars(select(CustomerProfile.cluster_no)).all()


def test_cli_refreshes_tags_and_portraits(world: World, records: dict[str, list[int]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    runner = CliRunner()
    assert runner.invoke(app, ["tags", "refresh", "--as-of", "2026-13-01"]).exit_code == 2
    tags = runner.invoke(app, ["tags", "refresh", "--as-of", "2026-06-26"])
    assert tags.exit_code == 0, tags.output
    assert "14 户" in tags.output and "长期欠费客户：1 户" in tags.output
    portraits = runner.invoke(app, ["portraits", "refresh", "--as-of", "2026-06-26"])
    assert portraits.exit_code == 0 and "k=" in portraits.output and "群0" in portraits.output
    shown = runner.invoke(app, ["show", ACCOUNT_A])
    assert shown.exit_code == 0 and "偏好人工服务" in shown.output and "handoff#" in shown.output
    assert "13800138000" not in shown.output and "陈志强" not in shown.output
    assert runner.invoke(app, ["portraits", "show"]).exit_code == 0
    both = runner.invoke(app, ["refresh", "--as-of", "2026-06-26"])
    assert both.exit_code == 0 and "14 户" in both.output and "k=" in both.output


@pytest.mark.postgres
def test_tags_and_portraits_on_postgresql(postgres_server) -> None:  # noqa: F811
    """The same records on PostgreSQL: its epoch arithmetic and casts give the same tags."""
    from tests.agent.world import build_world

    url = postgres_server.create_database()
    try:
        pg = build_world(url)
        check_tags(pg, add_records(pg))
        with pg.sessions.begin() as session:
            assert refresh_portraits(session, NOW).customers == 14
        pg.sessions.kw["bind"].dispose()
    finally:
        postgres_server.drop_database(url.rsplit("/", 1)[1])


def test_a_few_outliers_do_not_become_a_portrait_of_their_own() -> None:
    """Two blobs of 300 customers and three outliers: on the silhouette alone k=3 wins (0.871 against
    0.862), the third cluster being the three outliers; no chosen cluster may hold under
    MIN_CLUSTER_SHARE of the customers, so k=2 is taken."""
    import numpy as np

    from agent.experience.portraits import MIN_CLUSTER_SHARE, cluster

    rng = np.random.default_rng(1)
    blobs = [rng.normal(centre, 0.3, size=(300, 3)) for centre in (0.0, 3.0)]
    outliers = np.full((3, 3), 8.0) + rng.normal(0, 0.2, (3, 3))
    k, _score, scores, labels, _centres = cluster(np.vstack([*blobs, outliers]))
    assert scores[3] > scores[2]  # the silhouette alone would pick the outlier cluster
    assert k == 2 and np.bincount(labels, minlength=k).min() >= MIN_CLUSTER_SHARE * 603
