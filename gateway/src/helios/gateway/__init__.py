"""Helios gateway: the HTTP edge in front of the gRPC services."""
