"""The deployment's provider configuration, platform_settings.auth_config (C1)."""

from alembic import op

from helios.kernel.migrations import grant_statements

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

S = "identity"


def upgrade() -> None:
    for statement in grant_statements(S, "helios_identity"):
        op.execute(statement)


def downgrade() -> None:
    pass
