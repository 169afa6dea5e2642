"""Authz's pure model and rules: no I/O."""
