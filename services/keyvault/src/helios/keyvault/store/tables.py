"""Keyvault's tables, in the `keyvault` schema. Material is stored only sealed by the root key."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    Uuid,
)

from helios.kernel.outbox import outbox_table

__all__ = ["SCHEMA", "key_versions", "keys", "metadata", "outbox"]

SCHEMA = "keyvault"
metadata = MetaData(schema=SCHEMA)

keys = Table(
    "keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("purpose", SmallInteger, nullable=False),
    Column("algorithm", SmallInteger, nullable=False),
    Column("current_version", Integer, nullable=False),
    Column("min_decryption_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True)),
    Column("rotation_period_seconds", Integer),
    Column("next_rotation_at", DateTime(timezone=True)),
    UniqueConstraint("org_id", "name", name="keys_org_name"),
)

key_versions = Table(
    "key_versions",
    metadata,
    Column("key_id", Uuid, ForeignKey(keys.c.id, ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    # NULL once destroyed: the material is gone, only the metadata stays.
    Column("sealed_material", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True)),
    Column("use_count", BigInteger, nullable=False, server_default="0"),
    Column("live_ciphertexts", BigInteger, nullable=False, server_default="0"),
    Column("live_data_keys", BigInteger, nullable=False, server_default="0"),
)

outbox = outbox_table(metadata)
