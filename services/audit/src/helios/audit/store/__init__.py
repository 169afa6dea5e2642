"""Audit's persistence: the append-only log, dead letters, migrations."""
