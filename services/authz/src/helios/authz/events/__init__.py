"""Authz on NATS: cache invalidation, blueprint seeding on new orgs, catalog registration."""
