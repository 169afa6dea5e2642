"""Audit's gRPC surface."""
