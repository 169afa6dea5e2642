"""Authz's PostgreSQL adapter: tables, migrations and the transaction port."""
