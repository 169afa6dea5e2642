"""Identity's gRPC surface: thin servicer and proto conversion."""
