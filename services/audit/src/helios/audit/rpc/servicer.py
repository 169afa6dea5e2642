"""AuditService over gRPC: ListEvents, WatchEvents; the Merkle log RPCs answer UNIMPLEMENTED
until issue #6."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from helios.audit.service import AuditService
from helios.kernel.context import current_call
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc

__all__ = ["AuditServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Thin handlers; errors are mapped by the kernel interceptor. `stopping` is set when the
    server shuts down: open WatchEvents streams then end normally instead of being cut off."""

    def __init__(self, service: AuditService, stopping: asyncio.Event | None = None) -> None:
        self._service = service
        self._stopping = stopping or asyncio.Event()

    async def ListEvents(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.ListEventsRequest, context: Context
    ) -> audit_pb2.ListEventsResponse:
        records, next_token = await self._service.list_events(request, current_call())
        return audit_pb2.ListEventsResponse(records=records, next_page_token=next_token)

    async def WatchEvents(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.WatchEventsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.WatchEventsResponse]:
        rows = self._service.watch_events(request, current_call(), self._stopping)
        async for seq, record in rows:
            yield audit_pb2.WatchEventsResponse(record=record, sequence=seq)
