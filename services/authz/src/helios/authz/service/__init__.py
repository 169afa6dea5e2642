"""Authz's use cases: catalog, roles, teams, user types, dangerous actions, decisions, seeding."""
