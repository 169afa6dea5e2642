"""API keys for machine callers, stored as hashes."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from helios.kernel.migrations import grant_statements

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "org_id", sa.Uuid, sa.ForeignKey(f"{S}.orgs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("permissions", ARRAY(sa.String(200)), nullable=False),
        sa.Column(
            "created_by",
            sa.Uuid,
            sa.ForeignKey(f"{S}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_api_keys_org_created", "api_keys", ["org_id", "created_at"], schema=S)
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("api_keys", schema=S)
