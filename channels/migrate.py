"""Schema migrations of the channel layer's operations tables (own chain, `alembic_version_channels`).

The same machinery as billing, tools and agent (`billing_core.db.migration_chain`): `alembic_config`
is what the `powerdesk.migrations` entry point hands to `powerdesk db upgrade`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from billing_core.db.migration_chain import MigrationChain


def channels_metadata() -> MetaData:
    """The MetaData holding only the channel layer's tables."""
    from channels.models import ChannelsBase

    return ChannelsBase.metadata


CHAIN = MigrationChain("channels", Path(__file__).with_name("migrations"), "alembic_version_channels",
                       channels_metadata)
alembic_config = CHAIN.alembic_config
upgrade = CHAIN.upgrade
current_revision = CHAIN.current_revision
head_revision = CHAIN.head_revision
