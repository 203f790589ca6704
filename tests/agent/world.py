"""A small utility for agent tests: customers with bills computed by the billing core from usage,
in a database migrated by every chain (billing, tools, agent) as `powerdesk db upgrade` does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from agent.migrate import upgrade as upgrade_agent
from billing_core.bill_types import BillRequest, CustomerCategory, Usage
from billing_core.tariffs.compute import compute_bill
from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade as upgrade_billing
from billing_core.db.models import Bill, BillStatus, Customer, Payment, PaymentChannel, bill_from_computed
from billing_core.periods import period_bounds
from tools.migrate import upgrade as upgrade_tools

# Friday 2026-06-26 10:00 in Guangzhou: the May bills are issued and not yet due.
NOW = datetime(2026, 6, 26, 2, 0, tzinfo=UTC)

ACCOUNT_A = "440100000001"  # 陈志强, phone 13800138000, id tail 123X, bound WeChat openid-A
ACCOUNT_B = "440100000002"  # 林美玲, phone 13900139000, id tail 5678


def migrate(url: str) -> None:
    upgrade_billing(url)
    upgrade_tools(url)
    upgrade_agent(url)


def add_customer(session: Session, account_no: str, *, name: str, phone: str, id_last4: str, address: str,
                 openid: str | None = None) -> Customer:
    customer = Customer(account_no=account_no, name=name, phone=phone, id_last4=id_last4, address=address,
                        category=CustomerCategory.RESIDENTIAL, wechat_openid=openid)
    session.add(customer)
    session.flush()
    return customer


def add_bill(session: Session, customer: Customer, period: str, kwh: str, due: date,
             status: BillStatus = BillStatus.ISSUED) -> Bill:
    start, end = period_bounds(period)
    computed = compute_bill(BillRequest(account_no=customer.account_no,
                                        attributes=customer.tariff_attributes(), period_start=start,
                                        period_end=end, usage=Usage(total_kwh=Decimal(kwh))))
    bill = bill_from_computed(customer.id, period, computed)
    bill.status, bill.due_date = status, due
    bill.bill_no = f"GD{period.replace('-', '')}{customer.account_no}"
    session.add(bill)
    session.flush()
    return bill


@dataclass
class World:
    url: str
    sessions: sessionmaker[Session]
    amounts: dict[str, Decimal]  # "A:2026-05" -> the billing core's amount


def build_world(url: str) -> World:
    migrate(url)
    sessions = sessionmaker(bind=make_engine(url), expire_on_commit=False)
    amounts: dict[str, Decimal] = {}
    with sessions() as session:
        a = add_customer(session, ACCOUNT_A, name="陈志强", phone="13800138000", id_last4="123X",
                         address="广州市天河区体育西路 1 号", openid="openid-A")
        april = add_bill(session, a, "2026-04", "300", date(2026, 5, 15))
        session.add(Payment(bill_id=april.id, customer_id=a.id, amount=april.amount,
                            channel=PaymentChannel.WECHAT_PAY, paid_at=datetime(2026, 5, 10, 4, tzinfo=UTC),
                            idempotency_key=f"pay-{april.id}"))
        april.status = BillStatus.PAID
        may = add_bill(session, a, "2026-05", "480", date(2026, 7, 15))
        b = add_customer(session, ACCOUNT_B, name="林美玲", phone="13900139000", id_last4="5678",
                         address="广州市越秀区解放北路 968 号")
        may_b = add_bill(session, b, "2026-05", "157", date(2026, 7, 15))
        amounts.update({"A:2026-04": april.amount, "A:2026-05": may.amount, "B:2026-05": may_b.amount})
        session.commit()
    return World(url=url, sessions=sessions, amounts=amounts)
