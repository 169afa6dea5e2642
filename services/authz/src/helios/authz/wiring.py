"""Authz's composition root: the only place its adapters are built."""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path

from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service import AuthzService
from helios.authz.store import tables
from helios.authz.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.migrations import migrate
from helios.kernel.runtime import ServiceRuntime
from helios.kernel.settings import ServiceSettings
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc

__all__ = ["NAME", "migrate_schema", "wire"]

NAME = "authz"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def wire(settings: ServiceSettings) -> ServiceRuntime:
    """The whole authz process, not yet started."""
    runtime = ServiceRuntime.build(NAME, settings, tables.outbox)
    recorder = AuditRecorder(NAME, tables.outbox)
    uow = postgres_unit_of_work(runtime.sessions, recorder, _now, on_commit=runtime.relay.notify)
    servicer = AuthzServicer(AuthzService(uow, _now))  # type: ignore[abstract]  # rest UNIMPLEMENTED
    runtime.grpc.add_service(
        authz_pb2.DESCRIPTOR.services_by_name["AuthzService"].full_name,
        lambda server: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, server),
    )
    return runtime


def migrate_schema(settings: ServiceSettings) -> None:
    """Upgrade the authz schema to head."""
    location = Path(str(files("helios.authz.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)
