"""The broker's PostgreSQL adapters: tables, migrations, the unit of work."""
