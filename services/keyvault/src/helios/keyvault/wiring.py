"""keyvault's composition root: serves its v1 contract; every RPC answers UNIMPLEMENTED until #4."""

from __future__ import annotations

from helios.kernel.runtime import StatelessRuntime
from helios.kernel.settings import GrpcSettings
from helios.proto.keyvault.v1 import keyvault_pb2, keyvault_pb2_grpc

__all__ = ["NAME", "wire"]

NAME = "keyvault"


def wire(settings: GrpcSettings) -> StatelessRuntime:
    """The process, not yet started."""
    servicer = keyvault_pb2_grpc.KeyvaultServiceServicer()  # type: ignore[abstract]  # all UNIMPLEMENTED
    return StatelessRuntime.serving(
        NAME,
        settings,
        keyvault_pb2.DESCRIPTOR.services_by_name["KeyvaultService"],
        lambda server: keyvault_pb2_grpc.add_KeyvaultServiceServicer_to_server(servicer, server),
    )
