"""Alembic environment of the tools tables (version table `alembic_version_tools`).

Only this chain's tables are compared and migrated; other layers keep theirs in the same database
under their own chains. The shared body is `billing_core.db.migration_chain.run_env`.
"""

from billing_core.db.migration_chain import run_env
from tools.migrate import CHAIN

run_env(CHAIN)
