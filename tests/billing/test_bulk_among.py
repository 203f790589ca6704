"""`db.bulk.among`: the chunk queries' id filter, an IN list on SQLite and one array on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_core.db.bulk import among
from billing_core.db.models import Customer
from tests.billing.ops_factories import add_customer


def test_among_selects_exactly_the_given_ids_on_each_backend(session: Session) -> None:
    ids = [add_customer(session, n).id for n in range(1, 8)]
    session.commit()
    wanted = [ids[0], ids[3], ids[6], 999_999]  # an id that does not exist matches nothing
    found = session.scalars(select(Customer.id).where(among(session, Customer.id, wanted)).order_by(Customer.id))
    assert list(found) == [ids[0], ids[3], ids[6]]
    assert list(session.scalars(select(Customer.id).where(among(session, Customer.id, [])))) == []
    statement = str(select(Customer.id).where(among(session, Customer.id, wanted))
                    .compile(dialect=session.get_bind().dialect))
    if session.get_bind().dialect.name == "postgresql":  # one parameter, whatever the number of ids
        assert "= ANY (" in statement and statement.count("%(") == 1
    else:
        assert " IN (" in statement
