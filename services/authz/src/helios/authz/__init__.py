"""Helios authz service: permission catalog, roles and scoped decisions."""
