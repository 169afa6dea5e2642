"""Authz's tables, in the `authz` schema; grant and assignment history is kept, never erased."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from helios.kernel.outbox import outbox_table

__all__ = [
    "SCHEMA",
    "assignments",
    "metadata",
    "org_revisions",
    "outbox",
    "permissions",
    "role_grants",
    "roles",
]

SCHEMA = "authz"
metadata = MetaData(schema=SCHEMA)

permissions = Table(
    "permissions",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("description", String(500), nullable=False),
    Column("dangerous", Boolean, nullable=False),
    Column("allowed_scopes", ARRAY(String(8)), nullable=False),
    Column("registered_by", String(64), nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revision", BigInteger, nullable=False),
    UniqueConstraint("org_id", "name", name="roles_org_name"),
)

role_grants = Table(
    "role_grants",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("role_id", Uuid, ForeignKey(roles.c.id, ondelete="CASCADE"), nullable=False),
    Column("permission_key", String(200), ForeignKey(permissions.c.key), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("added_revision", BigInteger, nullable=False),
    Column("removed_revision", BigInteger),
    Index(
        "role_grants_current",
        "role_id",
        "permission_key",
        "scope",
        unique=True,
        postgresql_where=text("removed_revision IS NULL"),
    ),
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("role_id", Uuid, ForeignKey(roles.c.id, ondelete="CASCADE"), nullable=False),
    Column("granted_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("added_revision", BigInteger, nullable=False),
    Column("removed_revision", BigInteger),
    Index(
        "assignments_current",
        "org_id",
        "user_id",
        "role_id",
        unique=True,
        postgresql_where=text("removed_revision IS NULL"),
    ),
)

org_revisions = Table(
    "org_revisions",
    metadata,
    Column("org_id", String(64), primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

outbox = outbox_table(metadata)
