"""AuditService over gRPC: ListEvents, WatchEvents, the checkpoint RPCs (SealCheckpoint,
GetCheckpoint, GetInclusionProof, GetConsistencyProof) and ExportEvents."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from helios.audit.exporting import ExportService
from helios.audit.retention import RetentionService
from helios.audit.rpc.convert import (
    checkpoint_to_proto,
    export_chunk_to_proto,
    optional_time,
    tier_from_proto,
)
from helios.audit.sealing import CheckpointService
from helios.audit.service import AuditService
from helios.kernel.context import current_call
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc

__all__ = ["AuditServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Thin handlers; errors are mapped by the kernel interceptor. `stopping` is set when the
    server shuts down: open WatchEvents streams then end normally instead of being cut off.
    Without `checkpoints` the checkpoint RPCs answer UNIMPLEMENTED, without `exports`
    ExportEvents does."""

    def __init__(
        self,
        service: AuditService,
        stopping: asyncio.Event | None = None,
        *,
        checkpoints: CheckpointService | None = None,
        exports: ExportService | None = None,
        retention: RetentionService | None = None,
    ) -> None:
        self._service = service
        self._stopping = stopping or asyncio.Event()
        self._checkpoints = checkpoints
        self._exports = exports
        self._retention = retention

    def _sealer(self) -> CheckpointService:
        if self._checkpoints is None:
            raise NotImplementedError("checkpoints are not wired in this server")
        return self._checkpoints

    def _exporter(self) -> ExportService:
        if self._exports is None:
            raise NotImplementedError("exports are not wired in this server")
        return self._exports

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

    async def SealCheckpoint(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.SealCheckpointRequest, context: Context
    ) -> audit_pb2.SealCheckpointResponse:
        checkpoint = await self._sealer().seal(current_call(), request.org_id)
        return audit_pb2.SealCheckpointResponse(checkpoint=checkpoint_to_proto(checkpoint))

    async def GetCheckpoint(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetCheckpointRequest, context: Context
    ) -> audit_pb2.GetCheckpointResponse:
        checkpoint = await self._sealer().checkpoint(
            current_call(), request.org_id, request.tree_size
        )
        return audit_pb2.GetCheckpointResponse(checkpoint=checkpoint_to_proto(checkpoint))

    async def GetInclusionProof(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetInclusionProofRequest, context: Context
    ) -> audit_pb2.GetInclusionProofResponse:
        proof = await self._sealer().inclusion_proof(
            current_call(), request.org_id, request.event_id, request.tree_size
        )
        return audit_pb2.GetInclusionProofResponse(
            leaf_index=proof.leaf_index, tree_size=proof.tree_size, audit_path=proof.audit_path
        )

    async def GetConsistencyProof(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetConsistencyProofRequest, context: Context
    ) -> audit_pb2.GetConsistencyProofResponse:
        proof = await self._sealer().consistency_proof(
            current_call(), request.org_id, request.first_size, request.second_size
        )
        return audit_pb2.GetConsistencyProofResponse(proof=proof)

    async def ExportEvents(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.ExportEventsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.ExportEventsResponse]:
        chunks = self._exporter().export(
            current_call(),
            request.org_id,
            optional_time(request, "since"),
            optional_time(request, "until"),
            request.cursor,
        )
        async for chunk in chunks:
            yield export_chunk_to_proto(chunk)

    async def SetRetentionTier(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.SetRetentionTierRequest, context: Context
    ) -> audit_pb2.SetRetentionTierResponse:
        if self._retention is None:
            raise NotImplementedError("retention is not wired in this server")
        await self._retention.set_tier(
            current_call(), request.org_id, tier_from_proto(request.tier)
        )
        return audit_pb2.SetRetentionTierResponse()
