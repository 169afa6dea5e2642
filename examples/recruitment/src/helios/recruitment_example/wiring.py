"""The example service's composition root: its store, authz, server and start-up registrations."""

from __future__ import annotations

from dataclasses import dataclass

from helios.kernel.action_registry import action_registration_task
from helios.kernel.permission_catalog import registration_task
from helios.kernel.runtime import cert_files, verifier_from
from helios.kernel.server import GrpcService
from helios.proto.recruitment.v1 import recruitment_pb2, recruitment_pb2_grpc
from helios.recruitment_example.authz_gate import AuthzGate
from helios.recruitment_example.candidates import CandidateBook, OfferBook
from helios.recruitment_example.catalog import RECRUITMENT_ACTIONS, RECRUITMENT_PERMISSIONS
from helios.recruitment_example.servicer import RecruitmentServicer
from helios.recruitment_example.settings import RecruitmentSettings

__all__ = ["NAME", "SERVICE_NAME", "RecruitmentRuntime", "wire"]

NAME = "recruitment"
SERVICE_NAME = recruitment_pb2.DESCRIPTOR.services_by_name["RecruitmentService"].full_name


@dataclass
class RecruitmentRuntime:
    """The process: its gRPC server and the authz channel to close after it stops."""

    grpc: GrpcService
    authz: AuthzGate

    async def close(self) -> None:
        """Close the authz channel."""
        await self.authz.close()


def wire(settings: RecruitmentSettings) -> RecruitmentRuntime:
    """The whole process, not yet started: at start it registers its permissions with authz and
    its actions with the AI broker (both retried until they answer)."""
    certs = cert_files(settings)
    authz = AuthzGate(settings.authz_target, certs)
    servicer = RecruitmentServicer(authz, CandidateBook(), OfferBook())
    service = GrpcService(NAME, certs, verifier_from(settings))
    service.add_service(
        SERVICE_NAME,
        lambda server: recruitment_pb2_grpc.add_RecruitmentServiceServicer_to_server(
            servicer, server
        ),
    )
    service.add_background(
        registration_task(NAME, RECRUITMENT_PERMISSIONS, settings.authz_target, certs)
    )
    service.add_background(
        action_registration_task(NAME, RECRUITMENT_ACTIONS, settings.ai_broker_target, certs)
    )
    return RecruitmentRuntime(grpc=service, authz=authz)
