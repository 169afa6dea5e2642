"""ai_broker's composition root: serves its v1 contract; RPCs answer UNIMPLEMENTED until #8."""

from __future__ import annotations

from helios.kernel.runtime import StatelessRuntime
from helios.kernel.settings import GrpcSettings
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc

__all__ = ["NAME", "wire"]

NAME = "ai-broker"


def wire(settings: GrpcSettings) -> StatelessRuntime:
    """The process, not yet started."""
    servicer = ai_broker_pb2_grpc.AiBrokerServiceServicer()  # type: ignore[abstract]  # all UNIMPLEMENTED
    return StatelessRuntime.serving(
        NAME,
        settings,
        ai_broker_pb2.DESCRIPTOR.services_by_name["AiBrokerService"],
        lambda server: ai_broker_pb2_grpc.add_AiBrokerServiceServicer_to_server(servicer, server),
    )
