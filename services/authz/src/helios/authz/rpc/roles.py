"""Role and role-assignment RPCs."""

from __future__ import annotations

from typing import Any

import grpc

from helios.authz.rpc.convert import assignment_to_proto, grants_from_proto, role_to_proto
from helios.authz.service.roles import RoleService
from helios.kernel.context import current_call
from helios.kernel.errors import InvalidArgumentError
from helios.proto.authz.v1 import authz_pb2

__all__ = ["RoleHandlers"]

Context = grpc.aio.ServicerContext[Any, Any]


class RoleHandlers:
    """Thin handlers over RoleService."""

    _roles: RoleService

    async def CreateRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.CreateRoleRequest, context: Context
    ) -> authz_pb2.CreateRoleResponse:
        role = await self._roles.create(
            current_call(),
            request.org_id,
            request.name,
            request.description,
            grants_from_proto(request.permissions),
        )
        return authz_pb2.CreateRoleResponse(role=role_to_proto(role), revision=role.revision)

    async def GetRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.GetRoleRequest, context: Context
    ) -> authz_pb2.GetRoleResponse:
        role, revision = await self._roles.get(current_call(), request.org_id, request.role_id)
        return authz_pb2.GetRoleResponse(role=role_to_proto(role), revision=revision)

    async def ListRoles(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ListRolesRequest, context: Context
    ) -> authz_pb2.ListRolesResponse:
        roles, token, revision = await self._roles.page(
            current_call(), request.org_id, request.page_size, request.page_token
        )
        return authz_pb2.ListRolesResponse(
            roles=[role_to_proto(r) for r in roles], next_page_token=token, revision=revision
        )

    async def UpdateRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.UpdateRoleRequest, context: Context
    ) -> authz_pb2.UpdateRoleResponse:
        role = await self._roles.update(
            current_call(),
            request.org_id,
            request.role_id,
            request.name if request.HasField("name") else None,
            request.description if request.HasField("description") else None,
            grants_from_proto(request.permissions.permissions)
            if request.HasField("permissions")
            else None,
        )
        return authz_pb2.UpdateRoleResponse(role=role_to_proto(role), revision=role.revision)

    async def DeleteRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.DeleteRoleRequest, context: Context
    ) -> authz_pb2.DeleteRoleResponse:
        revision = await self._roles.delete(current_call(), request.org_id, request.role_id)
        return authz_pb2.DeleteRoleResponse(revision=revision)

    async def AssignRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.AssignRoleRequest, context: Context
    ) -> authz_pb2.AssignRoleResponse:
        if request.HasField("expire_time"):
            raise InvalidArgumentError(
                "expiring assignments are not supported yet; omit expire_time",
                field="expire_time",
            )
        assignment = await self._roles.assign(
            current_call(), request.org_id, request.role_id, request.user_id
        )
        return authz_pb2.AssignRoleResponse(
            assignment=assignment_to_proto(assignment), revision=assignment.revision
        )

    async def UnassignRole(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.UnassignRoleRequest, context: Context
    ) -> authz_pb2.UnassignRoleResponse:
        revision = await self._roles.unassign(
            current_call(), request.org_id, request.role_id, request.user_id
        )
        return authz_pb2.UnassignRoleResponse(revision=revision)

    async def ListRoleAssignments(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ListRoleAssignmentsRequest, context: Context
    ) -> authz_pb2.ListRoleAssignmentsResponse:
        found, token, revision = await self._roles.list_assignments(
            current_call(),
            request.org_id,
            request.user_id,
            request.role_id,
            request.page_size,
            request.page_token,
        )
        return authz_pb2.ListRoleAssignmentsResponse(
            assignments=[assignment_to_proto(a) for a in found],
            next_page_token=token,
            revision=revision,
        )
