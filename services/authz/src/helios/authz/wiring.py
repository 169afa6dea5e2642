"""Authz's composition root: the only place its adapters are built."""

from __future__ import annotations

import datetime as dt
from importlib.resources import files
from pathlib import Path

from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.events.invalidation import PolicyListener
from helios.authz.events.org_seeder import OrgSeeder
from helios.authz.events.own_catalog import register_own_catalog
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.settings import AuthzSettings
from helios.authz.store import tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.context import CallContext
from helios.kernel.db import create_engine, session_factory
from helios.kernel.migrations import migrate
from helios.kernel.runtime import ServiceRuntime
from helios.kernel.settings import ServiceSettings
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc

__all__ = ["NAME", "migrate_schema", "seed_root", "wire"]

NAME = "authz"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def wire(settings: AuthzSettings) -> ServiceRuntime:
    """The whole authz process, not yet started."""
    runtime = ServiceRuntime.build(NAME, settings, tables.outbox)
    recorder = AuditRecorder(NAME, tables.outbox)
    uow = postgres_unit_of_work(runtime.sessions, recorder, _now, on_commit=runtime.relay.notify)
    log = BatchedDecisionLog(runtime.sessions)
    services = AuthzServices.build(
        uow,
        log,
        _now,
        product_services=frozenset(settings.product_services),
        cache_ttl=settings.decision_cache_ttl_seconds,
    )
    servicer = AuthzServicer(services)
    runtime.grpc.add_service(
        authz_pb2.DESCRIPTOR.services_by_name["AuthzService"].full_name,
        lambda server: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, server),
    )
    runtime.grpc.add_background(log.run)
    runtime.grpc.add_background(register_own_catalog(services.catalog, NAME))
    runtime.grpc.add_background(PolicyListener(runtime.bus, services.decisions).run)
    runtime.grpc.add_background(OrgSeeder(runtime.bus, services.seeding).run)
    return runtime


def migrate_schema(settings: ServiceSettings) -> None:
    """Upgrade the authz schema to head."""
    location = Path(str(files("helios.authz.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)


async def seed_root(settings: AuthzSettings) -> int:
    """`seed-root`: make HELIOS_ROOT_USER_ID a platform root of HELIOS_PLATFORM_ORG_ID (the
    outbox relay of a running authz publishes the audit event). Exit status 2 without a user."""
    if not settings.root_user_id:
        print("HELIOS_ROOT_USER_ID is required")
        return 2
    engine = create_engine(settings.database_url.get_secret_value(), settings.database_role)
    try:
        uow = postgres_unit_of_work(
            session_factory(engine), AuditRecorder(NAME, tables.outbox), _now
        )
        services = AuthzServices.build(uow, BatchedDecisionLog(session_factory(engine)), _now)
        ctx = CallContext(caller=NAME)
        await services.catalog.register(ctx, NAME, list(AUTHZ_PERMISSIONS))
        added = await services.seeding.seed_platform_root(
            ctx, settings.platform_org_id, settings.root_user_id
        )
    finally:
        await engine.dispose()
    print("root granted" if added else "already root")
    return 0
