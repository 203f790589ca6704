"""Alembic environment of the channel layer's tables (version table `alembic_version_channels`)."""

from billing_core.db.migration_chain import run_env
from channels.migrate import CHAIN

run_env(CHAIN)
