"""AiBrokerService over gRPC, composed from one handler class per area. RPCs no handler defines
answer UNIMPLEMENTED (the generated base class)."""

from __future__ import annotations

from helios.ai_broker.rpc.invocations import InvocationHandlers
from helios.ai_broker.rpc.policies import PolicyHandlers
from helios.ai_broker.rpc.prompts import PromptHandlers
from helios.ai_broker.rpc.registry import RegistryHandlers
from helios.ai_broker.rpc.sessions import SessionHandlers
from helios.ai_broker.service.bundle import BrokerServices
from helios.proto.ai_broker.v1 import ai_broker_pb2_grpc

__all__ = ["BrokerServicer"]


class BrokerServicer(
    PromptHandlers,
    SessionHandlers,
    RegistryHandlers,
    InvocationHandlers,
    PolicyHandlers,
    ai_broker_pb2_grpc.AiBrokerServiceServicer,
):
    """Thin handlers; errors are mapped to status codes by the kernel interceptor."""

    def __init__(self, services: BrokerServices) -> None:
        self._services = services
