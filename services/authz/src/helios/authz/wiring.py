"""authz's composition root: serves its v1 contract; every RPC answers UNIMPLEMENTED until #5."""

from __future__ import annotations

from helios.kernel.runtime import StatelessRuntime
from helios.kernel.settings import GrpcSettings
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc

__all__ = ["NAME", "wire"]

NAME = "authz"


def wire(settings: GrpcSettings) -> StatelessRuntime:
    """The process, not yet started."""
    servicer = authz_pb2_grpc.AuthzServiceServicer()  # type: ignore[abstract]  # all UNIMPLEMENTED
    return StatelessRuntime.serving(
        NAME,
        settings,
        authz_pb2.DESCRIPTOR.services_by_name["AuthzService"],
        lambda server: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, server),
    )
