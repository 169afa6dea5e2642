"""Authz for the example service: Check and PlanList asked as the `recruitment` service identity
about the principal each call carries (a person, or an AI acting as its delegating user, which
authz decides as that user)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from helios.kernel.clients import LazyChannel, call_metadata
from helios.kernel.errors import UnavailableError
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2
from helios.recruitment_example.candidates import Candidate

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["AuthzGate", "plan_reaches"]

_TIMEOUT = 5.0
# authz refusing the question itself (a malformed key, a principal in no org): a deny.
_NO_DECISION_POSSIBLE = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED}
)


def _resource(candidate: Candidate, resource_type: str) -> authz_pb2.Resource:
    return authz_pb2.Resource(
        type=resource_type,
        id=candidate.candidate_id,
        org_id=candidate.org_id,
        owner_id=candidate.owner_id,
        team_id=candidate.team_id,
    )


def _leaf_value(leaf: authz_pb2.FilterLeaf, candidate: Candidate) -> str | None:
    if leaf.field == authz_pb2.FILTER_FIELD_ORG_ID:
        return candidate.org_id
    if leaf.field == authz_pb2.FILTER_FIELD_OWNER_ID:
        return candidate.owner_id or None
    if leaf.field == authz_pb2.FILTER_FIELD_TEAM_ID:
        return candidate.team_id or None
    return None  # an unknown field matches nothing: fail closed


def _matches(node: authz_pb2.FilterNode, candidate: Candidate) -> bool:
    which = node.WhichOneof("node")
    if which == "leaf":
        return _leaf_value(node.leaf, candidate) in node.leaf.values
    if which == "all_of":
        return all(_matches(child, candidate) for child in node.all_of.nodes)
    if which == "any_of":
        return any(_matches(child, candidate) for child in node.any_of.nodes)
    return False  # a node this version cannot read matches nothing: fail closed


def plan_reaches(plan: authz_pb2.PlanListResponse, candidate: Candidate) -> bool:
    """Whether authz's list plan lets the lister see `candidate` (exactly what Check would
    allow, Z5): every row, none, or the rows matching the plan's filter; an unknown plan kind
    or a conditional plan without a filter reaches nothing."""
    if plan.kind == authz_pb2.PLAN_KIND_ALWAYS_ALLOWED:
        return True
    if plan.kind == authz_pb2.PLAN_KIND_CONDITIONAL and plan.HasField("filter"):
        return _matches(plan.filter, candidate)
    return False


class AuthzGate:
    """Asks authz; an authz that cannot answer raises UnavailableError (never an allow
    without a decision)."""

    def __init__(self, target: str, certs: CertFiles) -> None:
        self._channel = LazyChannel(target, certs)

    def _stub(self) -> AuthzServiceAsyncStub:
        return authz_pb2_grpc.AuthzServiceStub(self._channel.get())

    async def plan_list(
        self, principal: principal_pb2.Principal, permission: str, resource_type: str
    ) -> authz_pb2.PlanListResponse:
        """The list plan of `permission` over `resource_type` for `principal`."""
        try:
            reply: authz_pb2.PlanListResponse = await self._stub().PlanList(
                authz_pb2.PlanListRequest(
                    principal=principal, permission=permission, resource_type=resource_type
                ),
                timeout=_TIMEOUT,
                metadata=call_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NO_DECISION_POSSIBLE:
                return authz_pb2.PlanListResponse(kind=authz_pb2.PLAN_KIND_ALWAYS_DENIED)
            raise UnavailableError(f"authz could not plan: {exc.code().name}") from exc
        return reply

    async def allows(
        self,
        principal: principal_pb2.Principal,
        permission: str,
        candidate: Candidate,
        resource_type: str,
    ) -> bool:
        """Whether `principal` may use `permission` on `candidate`."""
        try:
            reply: authz_pb2.CheckResponse = await self._stub().Check(
                authz_pb2.CheckRequest(
                    principal=principal,
                    permission=permission,
                    resource=_resource(candidate, resource_type),
                ),
                timeout=_TIMEOUT,
                metadata=call_metadata(),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _NO_DECISION_POSSIBLE:
                return False
            raise UnavailableError(f"authz could not decide: {exc.code().name}") from exc
        return reply.decision.allowed

    async def close(self) -> None:
        """Close the channel (idempotent)."""
        await self._channel.close()
