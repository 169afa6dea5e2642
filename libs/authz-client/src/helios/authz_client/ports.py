"""What the local evaluator needs from authz, owned here; rpc.py implements it over gRPC."""

from __future__ import annotations

from typing import Protocol

from helios.authz_client.decisions import LocalDecision, LocalPlan
from helios.authz_client.freshness import Consistency
from helios.authz_client.snapshot import CatalogSnapshot, SubjectSnapshot
from helios.authz_rules.evaluator import Resource
from helios.authz_rules.permissions import PermissionKey
from helios.proto.common.v1 import principal_pb2

__all__ = ["AuthzSource"]


class AuthzSource(Protocol):
    """Authz as the evaluator sees it. Every method reads only (safe to retry) and raises
    UnavailableError when authz cannot answer in time, InvalidArgumentError when authz refuses
    the input; any other failure propagates unchanged (a deployment fault, never an allow)."""

    async def snapshot(
        self, principal: principal_pb2.Principal, consistency: Consistency
    ) -> SubjectSnapshot:
        """The principal's user's grants, teams and the org's dangerous actions, read with
        `consistency` (GetSubjectSnapshot)."""
        ...

    async def catalog(self) -> CatalogSnapshot:
        """The whole merged permission catalog, every page of it (ListPermissions)."""
        ...

    async def check(
        self,
        principal: principal_pb2.Principal,
        permission: PermissionKey,
        resource: Resource | None,
        consistency: Consistency,
        ai_narrowing: frozenset[str],
    ) -> LocalDecision:
        """Authz's own decision (Check), with source "rpc"."""
        ...

    async def plan_list(
        self,
        principal: principal_pb2.Principal,
        permission: PermissionKey,
        resource_type: str,
        consistency: Consistency,
        ai_narrowing: frozenset[str],
    ) -> LocalPlan:
        """Authz's own list plan (PlanList), with source "rpc"."""
        ...
