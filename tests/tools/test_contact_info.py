"""The contact tools: masked figures from the database, the verified customer only, and a phone
change that is validated, written through the billing core and audited without the number."""

from __future__ import annotations

from sqlalchemy import select

from billing_core.db.models import Customer
from tests.tools.conftest import ACCOUNT_A, World
from tools.registry import call_tool


def _verified(world: World):
    ctx = world.ctx("contact-1")
    assert call_tool(ctx, "verify_identity", {"account_no": ACCOUNT_A, "last4": "8000"}).status == "verified"
    return ctx


def _phone(world: World) -> str:
    with world.sessions() as session:
        return session.scalars(select(Customer.phone).where(Customer.account_no == ACCOUNT_A)).one()


def test_contact_info_needs_a_verified_customer_and_masks(world: World) -> None:
    assert call_tool(world.ctx("contact-0"), "contact_info", {}).status == "needs_verification"
    result = call_tool(_verified(world), "contact_info", {})
    phone = _phone(world)
    assert result.phone_masked == f"{phone[:3]}****{phone[-4:]}" and phone not in result.message
    assert result.address_street and not any(ch.isdigit() for ch in result.address_street)


def test_change_contact_phone_validates_writes_and_audits_without_the_number(world: World) -> None:
    from tools.models import AuditEvent

    ctx = _verified(world)
    assert call_tool(world.ctx("contact-0"), "change_contact_phone", {"new_phone": "13912345678"}).status \
        == "needs_verification"
    bad = call_tool(ctx, "change_contact_phone", {"new_phone": "1391234"})
    assert bad.status == "invalid_input" and bad.field == "new_phone" and _phone(world) != "1391234"
    done = call_tool(ctx, "change_contact_phone", {"new_phone": "139-1234-5678"})
    assert done.status == "changed" and done.new_phone_masked == "139****5678"
    assert _phone(world) == "13912345678"
    with world.sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.tool == "change_contact_phone")).all()
    assert {r.status for r in rows} >= {"changed", "invalid_input"}
    assert all("13912345678" not in str(r.arguments) + str(r.result) for r in rows)
