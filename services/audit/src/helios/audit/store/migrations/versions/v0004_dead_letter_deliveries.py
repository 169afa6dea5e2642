"""Dead letters count their redeliveries: the service role may update that one column."""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "audit"
ROLE = "helios_audit"

# A message redelivered after its dead letter committed (the ack was lost) bumps `deliveries`;
# without this grant the upsert is refused and the consumer retries that batch forever. A later
# migration that re-runs grant_statements (whose REVOKE UPDATE also drops column grants) must
# grant it again.


def upgrade() -> None:
    op.execute(f'GRANT UPDATE (deliveries) ON "{S}".dead_letters TO {ROLE}')


def downgrade() -> None:
    op.execute(f'REVOKE UPDATE (deliveries) ON "{S}".dead_letters FROM {ROLE}')
