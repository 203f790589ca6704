"""The classification policy (agent/experience/classification.yaml) and staff-set 重要客户 classes:
a malformed policy is refused naming file and field; the agent chain's migration creates exactly
the cx models; a class needs a known code, an existing 户号, a reason and a setter, and is audited."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from typer.testing import CliRunner

from agent.experience.classes import ClassInputError, clear_staff_class, set_staff_class, standing
from agent.experience.cli import app
from agent.experience.models import CX_TABLES, CustomerClassAssignment
from agent.experience.policy import POLICY_FILE, ClassificationPolicyError, load_policy, load_policy_file
from agent.migrate import agent_metadata, head_revision
from tests.agent.world import ACCOUNT_A, World
from tools.models import AuditEvent


def _write(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "classification.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_policy_has_table_1_and_derived_classes_with_units_and_standards() -> None:
    policy = load_policy()
    assert policy.version and policy.effective_date and "表1" in policy.source
    assert [c.name for c in policy.staff_classes] == ["特级重要客户", "一级重要客户", "二级重要客户"]
    assert {c.code for c in policy.derived_classes} >= {"large_ci", "long_overdue", "frequent_caller",
                                                        "repeat_caller", "complaint_sensitive"}
    assert all(c.responsible_unit and c.service.standard for c in policy.classes)
    hours = [c.service.complaint_contact_hours for c in policy.staff_classes]
    assert hours == sorted(hours) and hours[0] < 24  # shorter than the standard complaint SLA


@pytest.mark.parametrize(("change", "field"), [
    (lambda raw: raw["classes"][3]["criteria"][0].update(feature="shoe_size"), "classes.3.criteria.0.feature"),
    (lambda raw: raw.pop("effective_date"), "effective_date"),
    (lambda raw: raw["classes"][0].update(criteria=[{"feature": "annual_kwh", "min": 1}]), "classes.0.criteria"),
    (lambda raw: raw["classes"][1]["service"].update(complaint_contact_hours=0),
     "classes.1.service.complaint_contact_hours"),
    (lambda raw: raw["classes"].append(dict(raw["classes"][0])), "classes"),
    (lambda raw: raw["rules"]["repeat_bill_contact"].update(window_days="a week"), "rules.repeat_bill_contact.window_days"),
])
def test_a_malformed_policy_is_refused_naming_file_and_field(tmp_path: Path, change, field: str) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, change)
    with pytest.raises(ClassificationPolicyError) as caught:
        load_policy_file(path)
    assert str(path) in str(caught.value) and f": {field}:" in str(caught.value)


def test_the_migration_creates_exactly_the_cx_models(world: World) -> None:
    from billing_core.db.engine import make_engine

    assert head_revision() == "0005turnidx"
    metadata = agent_metadata()
    assert CX_TABLES <= set(metadata.tables)
    with make_engine(world.url).connect() as connection:
        context = MigrationContext.configure(connection, opts={
            "compare_type": True,
            "include_name": lambda name, type_, _p: type_ != "table" or name in metadata.tables})
        assert list(compare_metadata(context, metadata)) == []


def test_staff_set_class_needs_reason_and_setter_and_is_audited(world: World) -> None:
    with world.sessions.begin() as session:
        for kwargs, field in (({"class_code": "large_ci"}, "class_code"), ({"reason": "医院"}, "reason"),
                              ({"set_by": " "}, "set_by"), ({"account_no": "440100009999"}, "account_no")):
            arguments = {"account_no": ACCOUNT_A, "class_code": "vip_2", "reason": "区政府办公楼，重要负荷",
                         "set_by": "王敏", **kwargs}
            with pytest.raises(ClassInputError, match=f"^{field}:"):
                set_staff_class(session, **arguments)
        set_staff_class(session, ACCOUNT_A, "vip_2", "区政府办公楼，重要负荷", "王敏")
        set_staff_class(session, ACCOUNT_A, "vip_1", "升级：区应急指挥中心入驻", "李强")
    with world.sessions() as session:
        who = standing(session, ACCOUNT_A)
        assert who.names() == ["一级重要客户"] and who.staff_class.set_by == "李强"
        assert who.complaint_contact_hours == 2 and who.offer_person_first
        rows = session.scalars(select(AuditEvent).where(AuditEvent.tool == "cx_set_class")
                               .order_by(AuditEvent.id)).all()
        assert [(r.account_no, r.arguments["class_code"], r.result["previous"]) for r in rows] == [
            (ACCOUNT_A, "vip_2", None), (ACCOUNT_A, "vip_1", "vip_2")]
        assert rows[1].conversation_id == "staff:李强"
    with world.sessions.begin() as session:
        assert clear_staff_class(session, ACCOUNT_A, "医院已迁出本辖区", "王敏") == "vip_1"
    with world.sessions() as session:
        assert session.scalars(select(CustomerClassAssignment)).all() == []
        assert standing(session, ACCOUNT_A).classes == ()
        assert session.scalar(select(AuditEvent.status).where(AuditEvent.tool == "cx_clear_class")) == "cleared"


def test_cli_lists_sets_and_refuses_bad_input(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERDESK_DATABASE_URL", world.url)
    runner = CliRunner()
    listed = runner.invoke(app, ["classes", "list"])
    assert listed.exit_code == 0 and "一级重要客户" in listed.output and "各供电局" in listed.output
    bad = runner.invoke(app, ["classes", "set", ACCOUNT_A, "vip_9", "--reason", "某某重要单位", "--by", "王敏"])
    assert bad.exit_code == 2 and "class_code" in bad.output
    done = runner.invoke(app, ["classes", "set", ACCOUNT_A, "vip_special", "--reason", "省级指挥中心", "--by", "王敏"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(app, ["show", ACCOUNT_A])
    assert shown.exit_code == 0 and "特级重要客户" in shown.output and "13800138000" not in shown.output
    with world.sessions() as session:
        assert session.scalar(select(AuditEvent.channel).where(AuditEvent.tool == "cx_set_class")) == "cli"


def test_reports_group_by_the_leading_class_and_fall_back_to_the_tariff_category(world: World) -> None:
    """What the negative-experience and satisfaction reports group by (`default_class_resolver`)."""
    from agent.experience.classes import customer_classes
    from agent.experience.negative.report import default_class_resolver
    from tests.agent.world import ACCOUNT_B

    with world.sessions.begin() as session:
        set_staff_class(session, ACCOUNT_A, "vip_2", "区政府办公楼，二级重要客户", "王敏")
    with world.sessions() as session:
        assert default_class_resolver() is customer_classes
        groups = customer_classes(session, {ACCOUNT_A, ACCOUNT_B})
    assert groups[ACCOUNT_A] == load_policy().by_code("vip_2").name
    assert groups[ACCOUNT_B] in {"居民", "工商业", "农业"}
