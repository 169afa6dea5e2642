"""Authz's tables, in the `authz` schema; grant, membership and setting history is kept."""

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
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from helios.kernel.outbox import outbox_table

__all__ = [
    "SCHEMA",
    "assignments",
    "dangerous_actions",
    "decisions",
    "metadata",
    "org_revisions",
    "outbox",
    "permissions",
    "role_grants",
    "role_names",
    "roles",
    "team_members",
    "teams",
    "user_type_defaults",
    "user_type_members",
    "user_types",
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
    Column("blueprint", String(16), nullable=False, server_default="custom"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_revision", BigInteger),
    Index(
        "roles_current",
        "org_id",
        "name",
        unique=True,
        postgresql_where=text("deleted_revision IS NULL"),
    ),
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


def _named_entity(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("org_id", String(64), nullable=False),
        Column("name", String(100), nullable=False),
        Column("description", String(500), nullable=False, server_default=""),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("revision", BigInteger, nullable=False),
        Column("deleted_revision", BigInteger),
        Index(
            f"{name}_current",
            "org_id",
            "name",
            unique=True,
            postgresql_where=text("deleted_revision IS NULL"),
        ),
    )


def _history() -> tuple[Column[int], Column[int]]:
    """The revision span a row was live in: [added_revision, removed_revision)."""
    return (
        Column("added_revision", BigInteger, nullable=False),
        Column("removed_revision", BigInteger),
    )


def _current(name: str, *columns: str) -> Index:
    return Index(
        f"{name}_current", *columns, unique=True, postgresql_where=text("removed_revision IS NULL")
    )


role_names = Table(
    "role_names",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("role_id", Uuid, ForeignKey(roles.c.id), nullable=False),
    Column("name", String(100), nullable=False),
    *_history(),
    _current("role_names", "role_id"),
)
"""A role's name over time, so Explain shows the name a role had at a past revision."""

teams = _named_entity("teams")

team_members = Table(
    "team_members",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("team_id", Uuid, ForeignKey(teams.c.id), nullable=False),
    Column("org_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("added_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    *_history(),
    _current("team_members", "team_id", "user_id"),
    Index("team_members_user", "org_id", "user_id"),
)

user_types = _named_entity("user_types")

user_type_defaults = Table(
    "user_type_defaults",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_type_id", Uuid, ForeignKey(user_types.c.id), nullable=False),
    Column("role_id", Uuid, ForeignKey(roles.c.id), nullable=False),
    *_history(),
    _current("user_type_defaults", "user_type_id"),
)

user_type_members = Table(
    "user_type_members",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("org_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("user_type_id", Uuid, ForeignKey(user_types.c.id), nullable=False),
    *_history(),
    _current("user_type_members", "org_id", "user_id"),
)

dangerous_actions = Table(
    "dangerous_actions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("org_id", String(64), nullable=False),
    Column("pattern", String(200), nullable=False),
    *_history(),
    _current("dangerous_actions", "org_id", "pattern"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", String(64), nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("principal", JSONB, nullable=False),
    Column("permission", String(200), nullable=False),
    Column("resource", JSONB, nullable=False),
    Column("ai_narrowing", ARRAY(String(200)), nullable=False),
    Column("allowed", Boolean, nullable=False),
    Index("decisions_org_time", "org_id", "created_at"),
)

outbox = outbox_table(metadata)
