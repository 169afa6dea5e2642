"""Authz's gRPC adapter."""
