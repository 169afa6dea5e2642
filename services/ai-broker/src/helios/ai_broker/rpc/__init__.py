"""The broker's gRPC handlers: proto in, use case, proto out."""
