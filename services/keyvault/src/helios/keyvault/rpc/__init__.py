"""Keyvault's gRPC surface: thin servicer and proto conversion."""
