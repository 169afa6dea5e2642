"""AuditService over gRPC: ListEvents; the Merkle log RPCs answer UNIMPLEMENTED until issue #6."""

from __future__ import annotations

from typing import Any

import grpc

from helios.audit.service import AuditService
from helios.kernel.context import current_call
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc

__all__ = ["AuditServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Thin handlers; errors are mapped by the kernel interceptor."""

    def __init__(self, service: AuditService) -> None:
        self._service = service

    async def ListEvents(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.ListEventsRequest, context: Context
    ) -> audit_pb2.ListEventsResponse:
        records, next_token = await self._service.list_events(request, current_call())
        return audit_pb2.ListEventsResponse(records=records, next_page_token=next_token)
