"""Catalog, roles with grant history, assignments, org revisions, the outbox, the service role."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from helios.kernel.migrations import create_outbox, grant_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

S = "authz"

# Z6: platform.* belongs to the platform root role only; no tenant role may carry it, whatever
# path the row takes (the API refuses it first; this is the last line).
_REFUSE_PLATFORM = f"""
CREATE FUNCTION "{S}".refuse_platform_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.permission_key LIKE 'platform.%' THEN
        RAISE EXCEPTION 'platform.* permission % cannot be granted to a tenant role',
            NEW.permission_key USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$
"""
_TRIGGER = f"""
CREATE TRIGGER role_grants_no_platform BEFORE INSERT OR UPDATE ON "{S}".role_grants
FOR EACH ROW EXECUTE FUNCTION "{S}".refuse_platform_grant()
"""


def upgrade() -> None:
    op.create_table(
        "permissions",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("dangerous", sa.Boolean, nullable=False),
        sa.Column("allowed_scopes", ARRAY(sa.String(8)), nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        schema=S,
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("org_id", "name", name="roles_org_name"),
        schema=S,
    )
    op.create_table(
        "role_grants",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "role_id",
            sa.Uuid,
            sa.ForeignKey(f"{S}.roles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "permission_key",
            sa.String(200),
            sa.ForeignKey(f"{S}.permissions.key"),
            nullable=False,
        ),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("added_revision", sa.BigInteger, nullable=False),
        sa.Column("removed_revision", sa.BigInteger),
        sa.CheckConstraint("scope IN ('own', 'team', 'any')", name="role_grants_scope"),
        schema=S,
    )
    op.create_index(
        "role_grants_current",
        "role_grants",
        ["role_id", "permission_key", "scope"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("removed_revision IS NULL"),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column(
            "role_id",
            sa.Uuid,
            sa.ForeignKey(f"{S}.roles.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_revision", sa.BigInteger, nullable=False),
        sa.Column("removed_revision", sa.BigInteger),
        schema=S,
    )
    op.create_index(
        "assignments_current",
        "assignments",
        ["org_id", "user_id", "role_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("removed_revision IS NULL"),
    )
    op.create_table(
        "org_revisions",
        sa.Column("org_id", sa.String(64), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        schema=S,
    )
    op.execute(_REFUSE_PLATFORM)
    op.execute(_TRIGGER)
    create_outbox(S)
    for statement in grant_statements(S, "helios_authz"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(f'DROP TRIGGER IF EXISTS role_grants_no_platform ON "{S}".role_grants')
    op.execute(f'DROP FUNCTION IF EXISTS "{S}".refuse_platform_grant()')
    for table in ("outbox", "org_revisions", "assignments", "role_grants", "roles", "permissions"):
        op.drop_table(table, schema=S)
