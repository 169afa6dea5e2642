"""ai_broker's composition root: serves its v1 contract; RPCs answer UNIMPLEMENTED until #8."""

from __future__ import annotations

from helios.ai_broker.domain.permissions import AI_BROKER_PERMISSIONS
from helios.kernel.permission_catalog import registration_task
from helios.kernel.runtime import StatelessRuntime, cert_files
from helios.kernel.settings import GrpcSettings
from helios.proto.ai_broker.v1 import ai_broker_pb2, ai_broker_pb2_grpc

__all__ = ["NAME", "wire"]

NAME = "ai-broker"


def wire(settings: GrpcSettings) -> StatelessRuntime:
    """The process, not yet started; it registers its permissions with authz at start."""
    servicer = ai_broker_pb2_grpc.AiBrokerServiceServicer()  # type: ignore[abstract]  # all UNIMPLEMENTED
    runtime = StatelessRuntime.serving(
        NAME,
        settings,
        ai_broker_pb2.DESCRIPTOR.services_by_name["AiBrokerService"],
        lambda server: ai_broker_pb2_grpc.add_AiBrokerServiceServicer_to_server(servicer, server),
    )
    runtime.grpc.add_background(
        registration_task(NAME, AI_BROKER_PERMISSIONS, settings.authz_target, cert_files(settings))
    )
    return runtime
