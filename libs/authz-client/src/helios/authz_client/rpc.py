"""AuthzSource over the authz gRPC API: snapshots, the paged catalog, and Check / PlanList."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import grpc

from helios.authz_client.decisions import LocalDecision, LocalPlan
from helios.authz_client.freshness import Consistency, consistency_to_proto
from helios.authz_client.snapshot import (
    CatalogSnapshot,
    SubjectSnapshot,
    catalog_from_proto,
    grant_from_proto,
    held_from_proto,
    snapshot_from_proto,
)
from helios.authz_rules.evaluator import Resource
from helios.authz_rules.permissions import PermissionKey
from helios.authz_rules.plan import And, Eq, Field, Filter, In, Or, Plan, PlanKind
from helios.kernel.clients import call_metadata
from helios.kernel.errors import InvalidArgumentError, UnavailableError
from helios.proto.authz.v1 import authz_pb2
from helios.proto.common.v1 import principal_pb2

if TYPE_CHECKING:
    from helios.proto.authz.v1.authz_pb2_grpc import AuthzServiceAsyncStub

__all__ = ["FALLBACK_CODES", "GrpcAuthzSource", "Metadata", "filter_from_proto"]

Metadata = Sequence[tuple[str, str | bytes]]
_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")

FALLBACK_CODES: frozenset[grpc.StatusCode] = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)
"""Status codes that mean "authz could not answer in time": raised as UnavailableError."""

_CATALOG_PAGE = 500
_MAX_CATALOG_PAGES = 1_000
_PLAN_KINDS = {
    authz_pb2.PLAN_KIND_ALWAYS_ALLOWED: PlanKind.ALWAYS_ALLOWED,
    authz_pb2.PLAN_KIND_ALWAYS_DENIED: PlanKind.ALWAYS_DENIED,
    authz_pb2.PLAN_KIND_CONDITIONAL: PlanKind.CONDITIONAL,
}
_FIELDS: dict[authz_pb2.FilterField.ValueType, Field] = {
    authz_pb2.FILTER_FIELD_ORG_ID: "org_id",
    authz_pb2.FILTER_FIELD_OWNER_ID: "owner_id",
    authz_pb2.FILTER_FIELD_TEAM_ID: "team_id",
}


def filter_from_proto(node: authz_pb2.FilterNode) -> Filter:
    """A served filter tree in the rules' terms (a one-value leaf is an Eq). A node this
    version cannot read matches nothing (an empty Or): fail closed."""
    which = node.WhichOneof("node")
    if which == "all_of":
        return And(tuple(filter_from_proto(n) for n in node.all_of.nodes))
    if which == "any_of":
        return Or(tuple(filter_from_proto(n) for n in node.any_of.nodes))
    if which == "leaf" and node.leaf.field in _FIELDS:
        field = _FIELDS[node.leaf.field]
        values = tuple(node.leaf.values)
        return Eq(field, values[0]) if len(values) == 1 else In(field, values)
    return Or(())


def _deny_name(decision: authz_pb2.Decision) -> str:
    try:
        return authz_pb2.DenyReason.Name(decision.deny_reason)
    except ValueError:
        return f"deny reason {decision.deny_reason}"


def _resource_to_proto(resource: Resource) -> authz_pb2.Resource:
    return authz_pb2.Resource(
        type=resource.type,
        id=resource.id,
        org_id=resource.org_id,
        owner_id=resource.owner_id or "",
        team_id=resource.team_id or "",
    )


def _narrowing_to_proto(keys: frozenset[str]) -> list[authz_pb2.ScopedPermission]:
    # Narrowing restricts keys, not scopes: ANY leaves the user's scopes as they are.
    return [
        authz_pb2.ScopedPermission(permission=k, scope=authz_pb2.SCOPE_ANY) for k in sorted(keys)
    ]


class GrpcAuthzSource:
    """Calls authz with this process's mTLS identity, asking about the principal it names in
    each request; `metadata_factory` adds per-call metadata (trace context by default). Every
    call has a deadline of `timeout` seconds."""

    def __init__(
        self,
        stub: AuthzServiceAsyncStub,
        metadata_factory: Callable[[], Metadata] = call_metadata,
        *,
        timeout: float = 2.0,
    ) -> None:
        self._stub = stub
        self._metadata = metadata_factory
        self._timeout = timeout

    async def _call(
        self, method: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp], request: _Req
    ) -> _Resp:
        try:
            return await method(request, metadata=self._metadata(), timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code in FALLBACK_CODES:
                raise UnavailableError("authz is unavailable, try again later") from error
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgumentError(error.details() or "authz refused the input") from None
            raise

    async def snapshot(
        self, principal: principal_pb2.Principal, consistency: Consistency
    ) -> SubjectSnapshot:
        """GetSubjectSnapshot for `principal`."""
        reply = await self._call(
            self._stub.GetSubjectSnapshot,
            authz_pb2.GetSubjectSnapshotRequest(
                principal=principal, consistency=consistency_to_proto(consistency)
            ),
        )
        return snapshot_from_proto(principal, reply)

    async def catalog(self) -> CatalogSnapshot:
        """Every page of ListPermissions; the revision is the lowest a page reported, so a
        catalog that grew while paging is known to be behind and fetched again."""
        entries: list[authz_pb2.Permission] = []
        revision: int | None = None
        token = ""
        for _ in range(_MAX_CATALOG_PAGES):
            page = await self._call(
                self._stub.ListPermissions,
                authz_pb2.ListPermissionsRequest(page_size=_CATALOG_PAGE, page_token=token),
            )
            entries.extend(page.permissions)
            revision = page.revision if revision is None else min(revision, page.revision)
            token = page.next_page_token
            if not token:
                break
        return catalog_from_proto(entries, revision or 0)

    async def check(
        self,
        principal: principal_pb2.Principal,
        permission: PermissionKey,
        resource: Resource | None,
        consistency: Consistency,
        ai_narrowing: frozenset[str],
    ) -> LocalDecision:
        """Check: authz decides."""
        request = authz_pb2.CheckRequest(
            principal=principal,
            permission=str(permission),
            consistency=consistency_to_proto(consistency),
            ai_narrowing=_narrowing_to_proto(ai_narrowing),
        )
        if resource is not None:
            request.resource.CopyFrom(_resource_to_proto(resource))
        reply = await self._call(self._stub.Check, request)
        decision = reply.decision
        held = held_from_proto(decision.grant) if decision.HasField("grant") else None
        allowed = decision.allowed
        reason = "allowed by authz" if allowed else f"denied by authz: {_deny_name(decision)}"
        return LocalDecision(
            allowed=allowed,
            grant=grant_from_proto(decision.grant.permission) if allowed else None,
            dangerous=decision.dangerous,
            revision=decision.revision,
            reason=reason,
            source="rpc",
            held=held if allowed else None,
        )

    async def plan_list(
        self,
        principal: principal_pb2.Principal,
        permission: PermissionKey,
        resource_type: str,
        consistency: Consistency,
        ai_narrowing: frozenset[str],
    ) -> LocalPlan:
        """PlanList: authz plans. An unknown plan kind is served as always denied."""
        reply = await self._call(
            self._stub.PlanList,
            authz_pb2.PlanListRequest(
                principal=principal,
                permission=str(permission),
                resource_type=resource_type,
                consistency=consistency_to_proto(consistency),
                ai_narrowing=_narrowing_to_proto(ai_narrowing),
            ),
        )
        kind = _PLAN_KINDS.get(reply.kind, PlanKind.ALWAYS_DENIED)
        conditional = kind is PlanKind.CONDITIONAL and reply.HasField("filter")
        if kind is PlanKind.CONDITIONAL and not conditional:
            kind = PlanKind.ALWAYS_DENIED
        plan = Plan(
            kind=kind,
            resource_type=resource_type,
            filter=filter_from_proto(reply.filter) if conditional else None,
            reason=f"planned by authz: {kind.value}",
        )
        return LocalPlan(
            plan=plan, dangerous=reply.dangerous, revision=reply.revision, source="rpc"
        )
