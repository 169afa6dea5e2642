"""The deployment's provider configuration, platform_settings.auth_config (C1).

One row, written by the first UpdateAuthConfig (until then the defaults apply). OIDC client
secrets inside the JSON are keyvault row secrets, never plaintext."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from helios.kernel.migrations import grant_statements

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    op.create_table(
        "platform_settings",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("auth_config", JSONB, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.CheckConstraint("key = 'auth'", name="platform_settings_one_row"),
        schema=S,
    )
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("platform_settings", schema=S)
