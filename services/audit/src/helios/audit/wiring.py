"""Audit's composition root: the only place its adapters are built."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import cast

from helios.audit.authz_plans import AuthzPlans
from helios.audit.domain.permissions import AUDIT_PERMISSIONS
from helios.audit.events.consumer import AuditConsumer
from helios.audit.events.ingest_metrics import IngestMetrics
from helios.audit.events.sealer import checkpoint_sealer
from helios.audit.exporting import ExportService
from helios.audit.retention import RetentionService, ScheduledPurge
from helios.audit.rpc.servicer import AuditServicer
from helios.audit.sealing import CheckpointService
from helios.audit.service import AuditService
from helios.audit.settings import AuditSettings
from helios.audit.store import tables
from helios.audit.store.keyvault_signer import KeyvaultSigner
from helios.audit.store.postgres import PostgresAuditLog
from helios.audit.store.reader import PgLogReader
from helios.audit.store.retention import postgres_retention
from helios.audit.store.tree import PgTreeStore
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.migrations import migrate
from helios.kernel.permission_catalog import registration_task
from helios.kernel.runtime import ServiceRuntime, cert_files
from helios.kernel.settings import ServiceSettings
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc

__all__ = ["NAME", "AuditRuntime", "migrate_schema", "wire"]

NAME = "audit"


@dataclass
class AuditRuntime(ServiceRuntime):
    """The service runtime plus the keyvault signer and the authz plans client, whose channels
    are closed after the server stopped (calls in their grace period may still use them)."""

    signer: KeyvaultSigner | None = None
    plans: AuthzPlans | None = None

    async def close(self) -> None:
        """Close the keyvault and authz channels, then what ServiceRuntime closes."""
        if self.signer is not None:
            await self.signer.close()
        if self.plans is not None:
            await self.plans.close()
        await super().close()


def wire(settings: AuditSettings) -> ServiceRuntime:
    """The whole audit process (server, stream consumer, checkpoint sealer), not yet started."""
    # build() is typed as returning a ServiceRuntime but constructs `cls`
    runtime = cast(AuditRuntime, AuditRuntime.build(NAME, settings, tables.outbox))
    plans = runtime.plans = AuthzPlans(settings.authz_target, cert_files(settings))
    service = AuditService(PostgresAuditLog(runtime.sessions), plans)
    stopping = asyncio.Event()
    signer = runtime.signer = KeyvaultSigner(settings.keyvault_target, cert_files(settings))
    checkpoints = CheckpointService(PgTreeStore(runtime.sessions), signer)
    exports = ExportService(PgTreeStore(runtime.sessions), PgLogReader(runtime.sessions), signer)
    retention = RetentionService(
        postgres_retention(
            runtime.sessions, AuditRecorder(NAME, tables.outbox), on_commit=runtime.relay.notify
        ),
        signer,
        segment_level=settings.retention_segment_level,
    )
    # RPCs the servicer does not define answer UNIMPLEMENTED (the generated base class).
    servicer = AuditServicer(
        service, stopping, checkpoints=checkpoints, exports=exports, retention=retention
    )

    async def end_watches(stop: asyncio.Event) -> None:
        # set before the server's grace period, so WatchEvents streams end instead of being cut
        await stop.wait()
        stopping.set()

    runtime.grpc.add_service(
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
        lambda server: audit_pb2_grpc.add_AuditServiceServicer_to_server(servicer, server),
    )
    runtime.grpc.add_background(AuditConsumer(runtime.bus, service, metrics=IngestMetrics()).run)
    runtime.grpc.add_background(end_watches)
    runtime.grpc.add_background(
        ScheduledPurge(retention, settings.retention_purge_interval_seconds).run
    )
    runtime.grpc.add_background(
        checkpoint_sealer(checkpoints, settings.checkpoint_interval_seconds)
    )
    runtime.grpc.add_background(
        registration_task(NAME, AUDIT_PERMISSIONS, settings.authz_target, cert_files(settings))
    )
    return runtime


def migrate_schema(settings: ServiceSettings) -> None:
    """Upgrade the audit schema to head."""
    location = Path(str(files("helios.audit.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)
