"""AuthzService over gRPC: proto -> use case -> proto. RPCs not listed answer UNIMPLEMENTED."""

from __future__ import annotations

from typing import Any

import grpc

from helios.authz.rpc.convert import (
    assignment_to_proto,
    check_to_proto,
    grants_from_proto,
    permission_to_proto,
    plan_to_proto,
    resource_from_proto,
    role_to_proto,
    spec_from_proto,
)
from helios.authz.service import AuthzService
from helios.kernel.context import current_call
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc

__all__ = ["AuthzServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class AuthzServicer(authz_pb2_grpc.AuthzServiceServicer):
    """Thin handlers; errors are mapped to status codes by the kernel interceptor."""

    def __init__(self, service: AuthzService) -> None:
        self._service = service

    async def RegisterPermissions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.RegisterPermissionsRequest, context: Context
    ) -> authz_pb2.RegisterPermissionsResponse:
        added, revision = await self._service.register_permissions(
            current_call(), request.service, [spec_from_proto(p) for p in request.permissions]
        )
        return authz_pb2.RegisterPermissionsResponse(added_keys=added, revision=revision)

    async def ListPermissions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ListPermissionsRequest, context: Context
    ) -> authz_pb2.ListPermissionsResponse:
        entries, next_token, revision = await self._service.list_permissions(
            current_call(), request.service, request.page_size, request.page_token
        )
        return authz_pb2.ListPermissionsResponse(
            permissions=[permission_to_proto(e, d) for e, d in entries],
            next_page_token=next_token,
            revision=revision,
        )

    async def CreateRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.CreateRoleRequest, context: Context
    ) -> authz_pb2.CreateRoleResponse:
        role = await self._service.create_role(
            current_call(),
            request.org_id,
            request.name,
            request.description,
            grants_from_proto(request.permissions),
        )
        return authz_pb2.CreateRoleResponse(role=role_to_proto(role), revision=role.revision)

    async def AssignRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.AssignRoleRequest, context: Context
    ) -> authz_pb2.AssignRoleResponse:
        assignment = await self._service.assign_role(
            current_call(), request.org_id, request.role_id, request.user_id
        )
        return authz_pb2.AssignRoleResponse(
            assignment=assignment_to_proto(assignment), revision=assignment.revision
        )

    async def Check(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.CheckRequest, context: Context
    ) -> authz_pb2.CheckResponse:
        result = await self._service.check(
            current_call(),
            request.principal if request.HasField("principal") else None,
            request.permission,
            resource_from_proto(request.resource) if request.HasField("resource") else None,
            [p.permission for p in request.ai_narrowing],
        )
        return authz_pb2.CheckResponse(decision=check_to_proto(result))

    async def PlanList(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.PlanListRequest, context: Context
    ) -> authz_pb2.PlanListResponse:
        result = await self._service.plan_list(
            current_call(),
            request.principal if request.HasField("principal") else None,
            request.permission,
            request.resource_type,
            [p.permission for p in request.ai_narrowing],
        )
        return plan_to_proto(result)
