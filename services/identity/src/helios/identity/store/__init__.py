"""Identity's persistence: tables, the PostgreSQL adapter and migrations."""
