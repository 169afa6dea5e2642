"""Platform secrets (E7): one row per version, the value sealed by the root seal.

Versions are immutable: the service role may INSERT and SELECT `secrets` but not UPDATE or DELETE
them (grant_statements' read-only list), so a written version cannot be altered in place.
"""

import sqlalchemy as sa
from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "keyvault"


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("sealed_value", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name="secrets_version_positive"),
        sa.CheckConstraint(
            "name ~ '^[a-z0-9][a-z0-9._/-]{0,199}$' AND strpos(name, '..') = 0",
            name="secrets_name_valid",
        ),
        schema=S,
    )
    for statement in grant_statements(S, "helios_keyvault", read_only_tables=("secrets",)):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("secrets", schema=S)
