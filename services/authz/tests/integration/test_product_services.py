"""Product services (Z1, Z2): register their own module's permissions and ask for decisions,
but administer nothing and cannot squat on another module's keys."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.service.bundle import AuthzServices
from helios.authz.service.decisions import Query
from helios.authz.store import tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work
from helios.authz_rules.evaluator import Resource
from helios.authz_rules.permissions import Scope, permission
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.context import CallContext
from helios.kernel.errors import PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

from .conftest import utc_now

RECRUITMENT = CallContext(caller="recruitment")


@pytest.fixture
def services(authz_schema: str, db_session: async_sessionmaker[AsyncSession]) -> AuthzServices:
    uow = postgres_unit_of_work(db_session, AuditRecorder("authz", tables.outbox), utc_now)
    return AuthzServices.build(
        uow,
        BatchedDecisionLog(db_session),
        utc_now,
        product_services=frozenset({"recruitment"}),
        cache_ttl=0,
    )


async def test_z2_product_service_registers_only_its_own_module(services: AuthzServices) -> None:
    offer = permission("recruitment.offer.send", "Send an offer to a candidate.")
    added, revision = await services.catalog.register(RECRUITMENT, "recruitment", [offer])
    assert added == ["recruitment.offer.send"]
    assert revision > 0
    squat = permission("iam.user.delete", "Delete a user.")
    with pytest.raises(PermissionDeniedError, match=r"only recruitment\.\* keys"):
        await services.catalog.register(RECRUITMENT, "recruitment", [squat])
    with pytest.raises(PermissionDeniedError):
        await services.catalog.register(CallContext(caller="payroll"), "payroll", [])


async def test_z1_product_service_asks_decisions_but_administers_nothing(
    services: AuthzServices,
) -> None:
    await services.catalog.register(
        RECRUITMENT, "recruitment", [permission("recruitment.offer.send", "Send an offer.")]
    )
    org, owner = str(uuid.uuid4()), str(uuid.uuid4())
    await services.seeding.seed_org(CallContext(caller="identity"), org, owner)
    principal = principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=owner, org_id=org
    )
    result = await services.decisions.check(
        RECRUITMENT,
        Query(principal, "recruitment.offer.send", Resource("recruitment.offer", "o1", org)),
    )
    assert result.decision.allowed
    assert result.dangerous, "offer sent to a candidate is a D1 default"
    with pytest.raises(PermissionDeniedError, match="may not administer"):
        await services.roles.create(RECRUITMENT, org, "sneaky", "", [])


async def test_z3_blueprint_roles_grow_with_keys_registered_after_seeding(
    services: AuthzServices,
) -> None:
    identity = CallContext(caller="identity")
    org, owner, employee = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await services.seeding.seed_org(identity, org, owner)
    roles, _, _ = await services.roles.page(identity, org, 0, "")
    by_name = {r.name: r for r in roles}
    await services.roles.assign(identity, org, str(by_name["Employee"].id), employee)
    custom = await services.roles.create(identity, org, "Custom", "", [])
    before = (await services.decisions.facts(_user(org, owner))).revision

    added, _ = await services.catalog.register(
        RECRUITMENT,
        "recruitment",
        [
            permission("recruitment.offer.send", "Send an offer."),
            permission("recruitment.note.read", "Read notes.", scopes=(Scope.OWN, Scope.ANY)),
        ],
    )
    assert sorted(added) == ["recruitment.note.read", "recruitment.offer.send"]
    owner_facts = await services.decisions.facts(_user(org, owner))
    assert owner_facts.revision > before
    assert {str(h.grant) for h in owner_facts.held} >= {
        "recruitment.offer.send:any",
        "recruitment.note.read:any",
    }
    employee_grants = {
        str(h.grant) for h in (await services.decisions.facts(_user(org, employee))).held
    }
    assert "recruitment.note.read:own" in employee_grants
    assert not any(g.startswith("recruitment.offer.send") for g in employee_grants)
    custom_now, _ = await services.roles.get(identity, org, str(custom.id))
    assert custom_now.grants == frozenset()


def _user(org: str, user: str) -> principal_pb2.Principal:
    return principal_pb2.Principal(
        actor_type=principal_pb2.ACTOR_TYPE_USER, actor_id=user, org_id=org
    )
