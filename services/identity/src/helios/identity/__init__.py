"""Helios identity service: accounts, credentials, sessions and tenants."""
