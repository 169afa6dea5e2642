"""Identity's alembic migration on a real database: idempotent, role grants in place (P6)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import psycopg

from helios.identity.store import tables
from helios.kernel.migrations import migrate


def test_p6_migrating_twice_is_harmless(identity_schema: str) -> None:
    """P6: a second upgrade to head changes nothing and leaves one version row at head."""
    location = Path(str(files("helios.identity.store") / "migrations"))
    with psycopg.connect(identity_schema) as conn:
        before = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'identity' "
            "ORDER BY table_name"
        ).fetchall()

    migrate(identity_schema, tables.SCHEMA, location, tables.metadata)

    with psycopg.connect(identity_schema) as conn:
        after = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'identity' "
            "ORDER BY table_name"
        ).fetchall()
        versions = conn.execute("SELECT version_num FROM identity.alembic_version").fetchall()
        grants = conn.execute(
            "SELECT has_table_privilege('helios_identity', 'identity.users', 'INSERT')"
        ).fetchone()
    assert after == before
    assert {name for (name,) in after} == {t.name for t in tables.metadata.tables.values()} | {
        "alembic_version",
        "email_tokens",
        "memberships",
        "orgs",
        "mail_outbox",
        "outbox",
        "sessions",
        "sign_in_failures",
        "sign_in_lockouts",
        "users",
    }
    assert versions == [("0010",)]
    assert grants == (True,)
