"""HTTP/JSON <-> gRPC transcoding driven by the protos' `google.api.http` annotations."""
