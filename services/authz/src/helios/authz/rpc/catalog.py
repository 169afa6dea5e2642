"""Catalog and dangerous-action RPCs."""

from __future__ import annotations

from typing import Any

import grpc

from helios.authz.rpc.convert import permission_to_proto, spec_from_proto
from helios.authz.service.catalog import CatalogService
from helios.authz.service.dangerous import DangerousService
from helios.kernel.context import current_call
from helios.proto.authz.v1 import authz_pb2

__all__ = ["CatalogHandlers"]

Context = grpc.aio.ServicerContext[Any, Any]


class CatalogHandlers:
    """Thin handlers over CatalogService and DangerousService."""

    _catalog: CatalogService
    _dangerous: DangerousService

    async def RegisterPermissions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.RegisterPermissionsRequest, context: Context
    ) -> authz_pb2.RegisterPermissionsResponse:
        added, revision = await self._catalog.register(
            current_call(), request.service, [spec_from_proto(p) for p in request.permissions]
        )
        return authz_pb2.RegisterPermissionsResponse(added_keys=added, revision=revision)

    async def ListPermissions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.ListPermissionsRequest, context: Context
    ) -> authz_pb2.ListPermissionsResponse:
        entries, next_token, revision = await self._catalog.page(
            current_call(), request.org_id, request.service, request.page_size, request.page_token
        )
        return authz_pb2.ListPermissionsResponse(
            permissions=[permission_to_proto(e, d) for e, d in entries],
            next_page_token=next_token,
            revision=revision,
        )

    async def GetDangerousActions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.GetDangerousActionsRequest, context: Context
    ) -> authz_pb2.GetDangerousActionsResponse:
        defaults, marked, revision = await self._dangerous.get(current_call(), request.org_id)
        return authz_pb2.GetDangerousActionsResponse(
            default_permissions=defaults, org_permissions=marked, revision=revision
        )

    async def SetDangerousActions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.SetDangerousActionsRequest, context: Context
    ) -> authz_pb2.SetDangerousActionsResponse:
        marked, revision = await self._dangerous.set(
            current_call(), request.org_id, list(request.permissions)
        )
        return authz_pb2.SetDangerousActionsResponse(permissions=marked, revision=revision)
