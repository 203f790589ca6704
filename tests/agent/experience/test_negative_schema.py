"""The agent chain's 0002negative revision creates exactly the 负面体验 model, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from agent.migrate import agent_metadata, current_revision, head_revision, upgrade
from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade as upgrade_billing
from tests.billing.conftest import empty_database_url, postgres_server  # noqa: F401  (fixtures)
from tools.migrate import upgrade as upgrade_tools


def test_agent_chain_creates_the_negative_experience_table(empty_database_url: str) -> None:  # noqa: F811
    upgrade_billing(empty_database_url)
    upgrade_tools(empty_database_url)
    upgrade(empty_database_url)
    assert current_revision(empty_database_url) == head_revision()  # the whole chain, 0002negative in it
    engine = make_engine(empty_database_url)
    try:
        assert "agent_negative_experiences" in inspect(engine).get_table_names()
        metadata = agent_metadata()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "compare_type": True,
                "include_name": lambda name, type_, _p: type_ != "table" or name in metadata.tables})
            assert list(compare_metadata(context, metadata)) == []
    finally:
        engine.dispose()
