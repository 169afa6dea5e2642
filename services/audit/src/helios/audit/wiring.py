"""Audit's composition root: the only place its adapters are built."""

from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path

from helios.audit.domain.permissions import AUDIT_PERMISSIONS
from helios.audit.events.consumer import AuditConsumer
from helios.audit.rpc.servicer import AuditServicer
from helios.audit.service import AuditService
from helios.audit.store import tables
from helios.audit.store.postgres import PostgresAuditLog
from helios.kernel.migrations import migrate
from helios.kernel.permission_catalog import registration_task
from helios.kernel.runtime import ServiceRuntime, cert_files
from helios.kernel.settings import ServiceSettings
from helios.proto.audit.v1 import audit_pb2, audit_pb2_grpc

__all__ = ["NAME", "migrate_schema", "wire"]

NAME = "audit"


def wire(settings: ServiceSettings) -> ServiceRuntime:
    """The whole audit process (server + stream consumer), not yet started."""
    runtime = ServiceRuntime.build(NAME, settings, tables.outbox)
    service = AuditService(PostgresAuditLog(runtime.sessions))
    stopping = asyncio.Event()
    # RPCs the servicer does not define answer UNIMPLEMENTED (the generated base class).
    servicer = AuditServicer(service, stopping)  # type: ignore[abstract]

    async def end_watches(stop: asyncio.Event) -> None:
        # set before the server's grace period, so WatchEvents streams end instead of being cut
        await stop.wait()
        stopping.set()

    runtime.grpc.add_service(
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
        lambda server: audit_pb2_grpc.add_AuditServiceServicer_to_server(servicer, server),
    )
    runtime.grpc.add_background(AuditConsumer(runtime.bus, service).run)
    runtime.grpc.add_background(end_watches)
    runtime.grpc.add_background(
        registration_task(NAME, AUDIT_PERMISSIONS, settings.authz_target, cert_files(settings))
    )
    return runtime


def migrate_schema(settings: ServiceSettings) -> None:
    """Upgrade the audit schema to head."""
    location = Path(str(files("helios.audit.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)
