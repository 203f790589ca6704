"""One customer's classes, tags and portrait as the staff console and `powerdesk cx show` show them.

Nothing here holds a phone number, an ID or a name: tags are built from usage, bills and contact
records, and evidence is record kinds and ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.experience.classes import standing
from agent.experience.models import CustomerProfile, PortraitRun
from agent.experience.policy import ClassificationPolicy, load_policy
from billing_core.db.models import Customer


class ClassView(BaseModel):
    code: str
    name: str
    group: str
    basis: str
    basis_label: str  # 人工认定 / 数据计算
    responsible_unit: str
    standard: str
    complaint_contact_hours: int | None = None
    complaint_queue: str | None = None


class StaffClassView(BaseModel):
    code: str
    name: str
    reason: str
    set_by: str
    set_at: datetime


class Evidence(BaseModel):
    kind: str  # bill, payment, conversation, complaint, dispute, …
    ids: list[int]


class TagView(BaseModel):
    dimension: str
    code: str
    label: str
    value: Any = None
    evidence: list[Evidence] = []


class PortraitView(BaseModel):
    run_id: int
    cluster_no: int
    label: str
    size: int
    top_features: list[dict[str, Any]] = []
    computed_at: datetime
    criterion: str


class CustomerExperience(BaseModel):
    account_no: str
    classes: list[ClassView]
    staff_class: StaffClassView | None = None
    tags: list[TagView] = []
    computed_at: datetime | None = None
    policy_version: str
    portrait: PortraitView | None = None


def customer_experience(session: Session, account_no: str,
                        policy: ClassificationPolicy | None = None) -> CustomerExperience | None:
    """The customer's classes (staff-set + derived), stored tags and portrait; None if no such 户号."""
    if session.scalar(select(Customer.id).where(Customer.account_no == account_no)) is None:
        return None
    policy = policy or load_policy()
    who = standing(session, account_no, policy)
    profile = session.scalar(select(CustomerProfile).where(CustomerProfile.account_no == account_no))
    portrait = None
    if profile is not None and profile.portrait_run_id is not None and profile.cluster_no is not None:
        run = session.get(PortraitRun, profile.portrait_run_id)
        cluster = next((c for c in (run.clusters if run else []) if c.get("no") == profile.cluster_no), None)
        if run is not None and cluster is not None:
            portrait = PortraitView(run_id=run.id, cluster_no=profile.cluster_no, label=cluster["label"],
                                    size=cluster["size"], top_features=cluster.get("top_features", []),
                                    computed_at=run.computed_at, criterion=run.criterion)
    staff = who.staff_class
    return CustomerExperience(
        account_no=account_no,
        classes=[ClassView(code=c.code, name=c.name, group=c.group, basis=c.basis,
                           basis_label="人工认定" if c.basis == "staff" else "数据计算",
                           responsible_unit=c.responsible_unit, standard=c.service.standard,
                           complaint_contact_hours=c.service.complaint_contact_hours,
                           complaint_queue=c.service.complaint_queue) for c in who.classes],
        staff_class=StaffClassView(code=staff.code, name=staff.name, reason=staff.reason, set_by=staff.set_by,
                                   set_at=staff.set_at) if staff is not None else None,
        tags=[TagView.model_validate(t) for t in (profile.tags if profile is not None else [])],
        computed_at=profile.computed_at if profile is not None else None,
        policy_version=policy.version,
        portrait=portrait,
    )
