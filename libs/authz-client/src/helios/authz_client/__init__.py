"""Authz for callers: the same rules decided in-process from snapshots kept current over NATS."""
