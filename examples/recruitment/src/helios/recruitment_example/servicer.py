"""RecruitmentService over gRPC: every call checked with authz as the principal it carries."""

from __future__ import annotations

import re
from typing import Any

import grpc

from helios.kernel.context import current_call
from helios.kernel.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2
from helios.proto.recruitment.v1 import recruitment_pb2, recruitment_pb2_grpc
from helios.recruitment_example.authz_gate import AuthzGate, plan_reaches
from helios.recruitment_example.candidates import Candidate, CandidateBook, OfferBook
from helios.recruitment_example.catalog import CANDIDATE_LIST, CANDIDATE_TYPE, OFFER_SEND

__all__ = ["RecruitmentServicer"]

Context = grpc.aio.ServicerContext[Any, Any]
_CURRENCY = re.compile(r"[A-Z]{3}")


def _acting(org_id: str) -> tuple[principal_pb2.Principal, str]:
    """The caller's principal and org (`org_id`, empty for the principal's own; another org is
    refused)."""
    principal = current_call().require_principal()
    if not principal.org_id:
        raise PermissionDeniedError("the caller belongs to no org")
    if org_id and org_id != principal.org_id:
        raise PermissionDeniedError("a principal acts in its own org only")
    return principal, principal.org_id


def _candidate_to_proto(candidate: Candidate) -> recruitment_pb2.Candidate:
    return recruitment_pb2.Candidate(
        candidate_id=candidate.candidate_id,
        name=candidate.name,
        owner_id=candidate.owner_id,
        team_id=candidate.team_id,
    )


class RecruitmentServicer(recruitment_pb2_grpc.RecruitmentServiceServicer):
    """ListCandidates and SendOffer over the example store; errors map to status codes in the
    kernel interceptor."""

    def __init__(self, authz: AuthzGate, candidates: CandidateBook, offers: OfferBook) -> None:
        self._authz = authz
        self._candidates = candidates
        self._offers = offers

    async def ListCandidates(  # noqa: N802 - gRPC method name
        self, request: recruitment_pb2.ListCandidatesRequest, context: Context
    ) -> recruitment_pb2.ListCandidatesResponse:
        """The candidates authz's list plan lets the caller see (own, team or any)."""
        principal, org = _acting(request.org_id)
        plan = await self._authz.plan_list(principal, CANDIDATE_LIST, CANDIDATE_TYPE)
        if plan.kind == authz_pb2.PLAN_KIND_ALWAYS_DENIED:
            raise PermissionDeniedError(f"{CANDIDATE_LIST} is not granted to you in this org")
        visible = [
            c for c in self._candidates.of_org(org, principal.actor_id) if plan_reaches(plan, c)
        ]
        return recruitment_pb2.ListCandidatesResponse(
            candidates=[_candidate_to_proto(c) for c in visible]
        )

    async def SendOffer(  # noqa: N802 - gRPC method name
        self, request: recruitment_pb2.SendOfferRequest, context: Context
    ) -> recruitment_pb2.SendOfferResponse:
        """Send an offer, if authz allows `recruitment.offer.send` on that candidate."""
        principal, org = _acting(request.org_id)
        if request.salary <= 0:
            raise InvalidArgumentError("salary must be a positive whole amount", field="salary")
        if not _CURRENCY.fullmatch(request.currency):
            raise InvalidArgumentError(
                "currency must be an ISO 4217 code such as EUR", field="currency"
            )
        candidate = self._candidates.find(org, principal.actor_id, request.candidate_id)
        if candidate is None:
            raise NotFoundError("no such candidate", field="candidate_id")
        if not await self._authz.allows(principal, OFFER_SEND, candidate, CANDIDATE_TYPE):
            raise PermissionDeniedError(f"{OFFER_SEND} on this candidate is not granted to you")
        offer = self._offers.send(
            candidate, request.salary, request.currency, sent_by=principal.actor_id
        )
        return recruitment_pb2.SendOfferResponse(
            offer=recruitment_pb2.Offer(
                offer_id=offer.offer_id,
                candidate_id=offer.candidate_id,
                salary=offer.salary,
                currency=offer.currency,
                sent_by=offer.sent_by,
            )
        )
