"""ListEvents scoped by authz's list plan (L1, Z5): the platform root sees every org's rows, org
admins their org's, others what their grants reach (their own rows), nobody another org's; a
real in-process authz decides."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.audit.authz_plans import AuthzPlans
from helios.audit.domain.events import Incoming
from helios.audit.domain.permissions import AUDIT_PERMISSIONS
from helios.audit.service import AuditService
from helios.audit.store.postgres import PostgresAuditLog
from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.store import tables as authz_tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work
from helios.authz_rules.permissions import Scope, permission
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.context import CallContext
from helios.kernel.migrations import migrate
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.proto.audit.v1 import audit_pb2, events_pb2
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc
from helios.proto.common.v1 import principal_pb2

_SCOPES = {
    authz_pb2.SCOPE_OWN: Scope.OWN,
    authz_pb2.SCOPE_TEAM: Scope.TEAM,
    authz_pb2.SCOPE_ANY: Scope.ANY,
}


@pytest.fixture(scope="session")
def authz_schema(database_url: str) -> str:
    location = Path(str(files("helios.authz.store") / "migrations"))
    migrate(database_url, authz_tables.SCHEMA, location, authz_tables.metadata)
    return database_url


@pytest.fixture
async def authz(
    authz_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    principal_keys: tuple[Path, Path],
) -> AsyncIterator[tuple[AuthzServices, int]]:
    """A real authz server over the test's rolled-back connection, with authz's and audit's
    catalogs registered."""
    uow = postgres_unit_of_work(db_session, AuditRecorder("authz", authz_tables.outbox), _now)
    services = AuthzServices.build(uow, BatchedDecisionLog(db_session), _now, cache_ttl=0)
    await services.catalog.register(CallContext(caller="authz"), "authz", list(AUTHZ_PERMISSIONS))
    audit_specs = [
        permission(
            p.key,
            p.description,
            dangerous=p.dangerous,
            scopes=tuple(_SCOPES[s] for s in p.allowed_scopes),
        )
        for p in AUDIT_PERMISSIONS
    ]
    await services.catalog.register(CallContext(caller="audit"), "audit", audit_specs)
    servicer = AuthzServicer(services)
    server = GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    server.add_service(
        "helios.proto.authz.v1.AuthzService",
        lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, s),
    )
    port = await server.start("127.0.0.1", 0)
    yield services, port
    await server.stop(0)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _principal(org: str, user: str) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=user, org_id=org
    )


async def test_l1_z5_list_events_follows_authz_list_plan(
    authz: tuple[AuthzServices, int],
    audit_schema: str,
    db_session: async_sessionmaker[AsyncSession],
    pki: dict[str, CertFiles],
    make_event: Callable[..., events_pb2.AuditEvent],
) -> None:
    services, port = authz
    org_a, org_b = str(uuid.uuid4()), str(uuid.uuid4())
    owner, employee, stranger = (str(uuid.uuid4()) for _ in range(3))
    identity = CallContext(caller="identity")
    await services.seeding.seed_org(identity, org_a, owner)
    roles, _, _ = await services.roles.page(identity, org_a, 0, "")
    staff = next(r for r in roles if r.name == "Employee")
    await services.roles.assign(identity, org_a, str(staff.id), employee)

    plans = AuthzPlans(f"localhost:{port}", pki["audit"])
    audit = AuditService(PostgresAuditLog(db_session), plans)
    events = [
        make_event(org_id=org_a, actor_id=owner, action="x.doc.create"),
        make_event(org_id=org_a, actor_id=employee, action="x.doc.update"),
        make_event(org_id=org_b, actor_id=owner, action="x.doc.delete"),
        make_event(org_id="", actor_id=stranger, action="identity.user.signUp"),
    ]

    await audit.ingest(
        [Incoming("audit.x", e.SerializeToString(), i + 1) for i, e in enumerate(events)]
    )

    async def seen(principal: principal_pb2.Principal, **filters: Any) -> list[str]:
        ctx = CallContext(caller="gateway", principal=principal)
        records, _ = await audit.list_events(audit_pb2.ListEventsRequest(**filters), ctx)
        return sorted(r.event.action for r in records)

    root = str(uuid.uuid4())
    await services.seeding.seed_platform_root(CallContext(caller="authz"), "platform", root)
    try:
        everything = await seen(_principal("platform", root))
        assert {"x.doc.create", "x.doc.update", "x.doc.delete", "identity.user.signUp"} <= set(
            everything
        )
        assert await seen(_principal("platform", root), org_id=org_b) == ["x.doc.delete"]
        assert await seen(_principal("platform", str(uuid.uuid4()))) == []
        assert await seen(_principal(org_a, owner)) == ["x.doc.create", "x.doc.update"]
        assert await seen(_principal(org_a, owner), actor_id=employee) == ["x.doc.update"]
        assert await seen(_principal(org_a, owner), org_id=org_b) == []
        assert await seen(_principal(org_a, employee)) == ["x.doc.update"]
        assert await seen(_principal(org_a, stranger)) == []
        assert await seen(_principal("", stranger)) == ["identity.user.signUp"]
    finally:
        await plans.close()
