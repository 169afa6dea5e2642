"""Alembic migrations per service schema, run by `python -m helios.<svc> migrate`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool, text
from sqlalchemy.dialects.postgresql import JSONB

from helios.kernel.db import normalize_url

__all__ = ["create_outbox", "grant_statements", "migrate", "run_alembic_env"]


def _config(url: str, schema: str, script_location: Path, metadata: MetaData) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes.update(url=normalize_url(url), schema=schema, metadata=metadata)
    return config


def migrate(url: str, schema: str, script_location: Path, metadata: MetaData) -> None:
    """Create the schema if needed and upgrade it to head; safe to run twice or concurrently
    (an advisory lock serialises concurrent runs)."""
    command.upgrade(_config(url, schema, script_location, metadata), "head")


def run_alembic_env() -> None:
    """The body of every service's alembic env.py: online migrations inside the service schema."""
    attrs = context.config.attributes
    schema: str = attrs["schema"]
    engine = create_engine(attrs["url"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=attrs["metadata"],
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.execute(text("SELECT pg_advisory_unlock(hashtext(:s))"), {"s": schema})
        connection.commit()
    engine.dispose()


def grant_statements(
    schema: str, role: str, *, read_only_tables: tuple[str, ...] = ()
) -> list[str]:
    """SQL that creates the service's NOLOGIN role (if missing) and grants it what it needs on its
    own schema: read/write on every table except `read_only_tables` (INSERT and SELECT only)."""
    append_only = ", ".join(f'"{schema}"."{t}"' for t in read_only_tables)
    statements = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "  # noqa: S608 - names are code constants
        f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$",
        f'GRANT USAGE ON SCHEMA "{schema}" TO {role}',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}',
    ]
    if append_only:
        statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {append_only} FROM {role}")
    return statements


def create_outbox(schema: str) -> None:
    """Create the service's `outbox` table (see helios.kernel.outbox) inside a migration."""
    from alembic import op

    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index(
        "outbox_unpublished",
        "outbox",
        ["created_at"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )
