"""Decision RPCs: Check, CheckBatch, PlanList, Explain, GetSubjectSnapshot."""

from __future__ import annotations

from typing import Any

import grpc

from helios.authz.rpc.convert import (
    check_to_proto,
    consistency_from_proto,
    held_to_proto,
    plan_to_proto,
    resource_from_proto,
    step_to_proto,
)
from helios.authz.service.access import Access
from helios.authz.service.decisions import DecisionService, Query
from helios.kernel.context import current_call
from helios.kernel.errors import InvalidArgumentError
from helios.proto.authz.v1 import authz_pb2

__all__ = ["DecisionHandlers"]

Context = grpc.aio.ServicerContext[Any, Any]


def _narrowing(permissions: Any) -> tuple[str, ...]:
    return tuple(p.permission for p in permissions)


class DecisionHandlers:
    """Thin handlers over DecisionService."""

    _decisions: DecisionService
    _access: Access

    async def Check(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.CheckRequest, context: Context
    ) -> authz_pb2.CheckResponse:
        query = Query(
            request.principal if request.HasField("principal") else None,
            request.permission,
            resource_from_proto(request.resource) if request.HasField("resource") else None,
            _narrowing(request.ai_narrowing),
        )
        result = await self._decisions.check(
            current_call(), query, consistency_from_proto(request.consistency)
        )
        return authz_pb2.CheckResponse(decision=check_to_proto(result))

    async def CheckBatch(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.CheckBatchRequest, context: Context
    ) -> authz_pb2.CheckBatchResponse:
        items = [
            (i.permission, resource_from_proto(i.resource) if i.HasField("resource") else None)
            for i in request.items
        ]
        results, revision = await self._decisions.check_batch(
            current_call(),
            request.principal if request.HasField("principal") else None,
            items,
            _narrowing(request.ai_narrowing),
            consistency_from_proto(request.consistency),
        )
        return authz_pb2.CheckBatchResponse(
            decisions=[check_to_proto(r) for r in results], revision=revision
        )

    async def PlanList(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.PlanListRequest, context: Context
    ) -> authz_pb2.PlanListResponse:
        query = Query(
            request.principal if request.HasField("principal") else None,
            request.permission,
            None,
            _narrowing(request.ai_narrowing),
        )
        result = await self._decisions.plan_list(
            current_call(),
            query,
            request.resource_type,
            consistency_from_proto(request.consistency),
        )
        return plan_to_proto(result)

    async def Explain(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ExplainRequest, context: Context
    ) -> authz_pb2.ExplainResponse:
        ctx = current_call()
        actor = await self._access.authorize(
            ctx, request.org_id, "authz.decision.explain", "authz.decision"
        )
        which = request.WhichOneof("target")
        if which == "decision_id":
            target: str | Query = request.decision_id
        elif which == "query":
            q = request.query
            target = Query(
                q.principal if q.HasField("principal") else None,
                q.permission,
                resource_from_proto(q.resource) if q.HasField("resource") else None,
                _narrowing(q.ai_narrowing),
            )
        else:
            raise InvalidArgumentError("give a decision_id or a query", field="target")
        result = await self._decisions.explain(actor.org_id, target, request.at_revision)
        return authz_pb2.ExplainResponse(
            decision=check_to_proto(result.check),
            steps=[step_to_proto(s, result.held) for s in result.steps],
            revision=result.check.revision,
        )

    async def GetSubjectSnapshot(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.GetSubjectSnapshotRequest, context: Context
    ) -> authz_pb2.GetSubjectSnapshotResponse:
        facts, catalog_revision = await self._decisions.snapshot(
            current_call(),
            request.principal if request.HasField("principal") else None,
            consistency_from_proto(request.consistency),
        )
        return authz_pb2.GetSubjectSnapshotResponse(
            grants=[held_to_proto(h) for h in facts.held],
            team_ids=sorted(facts.team_ids),
            org_dangerous_actions=sorted(facts.dangerous_patterns),
            platform_root=facts.platform_root,
            revision=facts.revision,
            catalog_revision=catalog_revision,
        )
