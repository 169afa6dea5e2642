"""Audit's alembic migration on a real database: idempotent, one trigger set, grants (P6, L1)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import psycopg

from helios.audit.store import tables
from helios.kernel.migrations import migrate

_TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'audit' "
    "ORDER BY table_name"
)
_TRIGGERS = (
    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit.audit_log'::regclass "
    "AND NOT tgisinternal ORDER BY tgname"
)


def test_p6_migrating_twice_is_harmless(audit_schema: str) -> None:
    """P6: a second upgrade to head changes nothing: same tables, the append-only triggers once,
    one version row at head, the role's append-only grants intact."""
    location = Path(str(files("helios.audit.store") / "migrations"))
    with psycopg.connect(audit_schema) as conn:
        tables_before = conn.execute(_TABLES).fetchall()
        triggers_before = conn.execute(_TRIGGERS).fetchall()

    migrate(audit_schema, tables.SCHEMA, location, tables.metadata)

    with psycopg.connect(audit_schema) as conn:
        tables_after = conn.execute(_TABLES).fetchall()
        triggers_after = conn.execute(_TRIGGERS).fetchall()
        versions = conn.execute("SELECT version_num FROM audit.alembic_version").fetchall()
        privileges = conn.execute(
            "SELECT has_table_privilege('helios_audit', 'audit.audit_log', p) "
            "FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p"
        ).fetchall()
    assert tables_after == tables_before
    assert {name for (name,) in tables_after} == {
        "alembic_version",
        "audit_log",
        "checkpoints",
        "dead_letters",
        "merkle_nodes",
        "org_logs",
        "org_retention",
        "outbox",
        "purges",
    }
    assert triggers_after == triggers_before
    assert triggers_after == [("audit_log_append_only",), ("audit_log_no_truncate",)]
    assert versions == [("0004",)]
    assert [allowed for (allowed,) in privileges] == [True, True, False, False, False]
    with psycopg.connect(audit_schema) as conn:
        purge_privileges = conn.execute(
            "SELECT has_table_privilege('helios_audit', 'audit.purges', p) "
            "FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p"
        ).fetchall()
        purge_triggers = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit.purges'::regclass "
            "AND NOT tgisinternal ORDER BY tgname"
        ).fetchall()
    assert [allowed for (allowed,) in purge_privileges] == [True, True, False, False, False]
    assert purge_triggers == [("purges_append_only",), ("purges_no_truncate",)]
