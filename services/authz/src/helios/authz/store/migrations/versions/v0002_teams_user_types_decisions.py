"""Teams, user types, org dangerous actions, role history (names, soft delete), decisions."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from helios.kernel.migrations import grant_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "authz"


def _history() -> list[sa.Column[int]]:
    """The revision span a row was live in: [added_revision, removed_revision)."""
    return [
        sa.Column("added_revision", sa.BigInteger, nullable=False),
        sa.Column("removed_revision", sa.BigInteger),
    ]


def _current_index(table: str, columns: list[str], live: str = "removed_revision") -> None:
    op.create_index(
        f"{table}_current",
        table,
        columns,
        unique=True,
        schema=S,
        postgresql_where=sa.text(f"{live} IS NULL"),
    )


def _named_entity(table: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("deleted_revision", sa.BigInteger),
        schema=S,
    )
    _current_index(table, ["org_id", "name"], live="deleted_revision")


def upgrade() -> None:
    op.add_column(
        "roles",
        sa.Column("blueprint", sa.String(16), nullable=False, server_default="custom"),
        schema=S,
    )
    op.add_column("roles", sa.Column("updated_at", sa.DateTime(timezone=True)), schema=S)
    op.execute(f'UPDATE "{S}".roles SET updated_at = created_at')  # noqa: S608 - constant schema
    op.alter_column("roles", "updated_at", nullable=False, schema=S)
    op.add_column("roles", sa.Column("deleted_revision", sa.BigInteger), schema=S)
    op.drop_constraint("roles_org_name", "roles", schema=S)
    _current_index("roles", ["org_id", "name"], live="deleted_revision")
    op.create_check_constraint(
        "roles_blueprint",
        "roles",
        "blueprint IN ('custom', 'owner', 'admin', 'manager', 'employee', 'client', 'root')",
        schema=S,
    )

    op.create_table(
        "role_names",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("role_id", sa.Uuid, sa.ForeignKey(f"{S}.roles.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        *_history(),
        schema=S,
    )
    _current_index("role_names", ["role_id"])
    op.execute(
        f'INSERT INTO "{S}".role_names (role_id, name, added_revision)'  # noqa: S608 - constant schema
        f' SELECT id, name, revision FROM "{S}".roles'
    )

    _named_entity("teams")
    op.create_table(
        "team_members",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("team_id", sa.Uuid, sa.ForeignKey(f"{S}.teams.id"), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_history(),
        schema=S,
    )
    _current_index("team_members", ["team_id", "user_id"])
    op.create_index("team_members_user", "team_members", ["org_id", "user_id"], schema=S)

    _named_entity("user_types")
    op.create_table(
        "user_type_defaults",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("user_type_id", sa.Uuid, sa.ForeignKey(f"{S}.user_types.id"), nullable=False),
        sa.Column("role_id", sa.Uuid, sa.ForeignKey(f"{S}.roles.id"), nullable=False),
        *_history(),
        schema=S,
    )
    _current_index("user_type_defaults", ["user_type_id"])
    op.create_table(
        "user_type_members",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("user_type_id", sa.Uuid, sa.ForeignKey(f"{S}.user_types.id"), nullable=False),
        *_history(),
        schema=S,
    )
    _current_index("user_type_members", ["org_id", "user_id"])

    op.create_table(
        "dangerous_actions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("pattern", sa.String(200), nullable=False),
        *_history(),
        schema=S,
    )
    _current_index("dangerous_actions", ["org_id", "pattern"])

    op.create_table(
        "decisions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("principal", JSONB, nullable=False),
        sa.Column("permission", sa.String(200), nullable=False),
        sa.Column("resource", JSONB, nullable=False),
        sa.Column("ai_narrowing", ARRAY(sa.String(200)), nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.CheckConstraint("kind IN ('check', 'plan')", name="decisions_kind"),
        schema=S,
    )
    op.create_index("decisions_org_time", "decisions", ["org_id", "created_at"], schema=S)
    for statement in grant_statements(S, "helios_authz", read_only_tables=("decisions",)):
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "decisions",
        "dangerous_actions",
        "user_type_members",
        "user_type_defaults",
        "user_types",
        "team_members",
        "teams",
        "role_names",
    ):
        op.drop_table(table, schema=S)
    op.drop_constraint("roles_blueprint", "roles", schema=S)
    op.drop_index("roles_current", "roles", schema=S)
    op.create_unique_constraint("roles_org_name", "roles", ["org_id", "name"], schema=S)
    for column in ("deleted_revision", "updated_at", "blueprint"):
        op.drop_column("roles", column, schema=S)
