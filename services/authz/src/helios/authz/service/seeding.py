"""Blueprint seeding (Z3): a new org gets the five blueprint roles and its owner gets Owner."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from helios.authz.domain.blueprints import Blueprint, blueprint_grants
from helios.authz.domain.model import RoleRecord
from helios.authz.ports import UnitOfWork
from helios.authz.service.access import Actor, valid_org_id
from helios.authz.service.roles import RoleService
from helios.authz.service.writes import record_write
from helios.authz_rules.permissions import Catalog
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.proto.authz.v1 import events_pb2

__all__ = ["BLUEPRINT_NAMES", "ROOT_ROLE_NAME", "SeedingService"]

ROOT_ROLE_NAME = "Platform root"

BLUEPRINT_NAMES: dict[Blueprint, str] = {
    Blueprint.OWNER: "Owner",
    Blueprint.ADMIN: "Admin",
    Blueprint.MANAGER: "Manager",
    Blueprint.EMPLOYEE: "Employee",
    Blueprint.CLIENT: "Client",
}
_DESCRIPTIONS = {
    Blueprint.OWNER: "Full control of the organization",
    Blueprint.ADMIN: "Administers the organization, short of deleting or handing it over",
    Blueprint.MANAGER: "Runs teams: team-wide rights outside administration",
    Blueprint.EMPLOYEE: "Day-to-day work on their own items",
    Blueprint.CLIENT: "External client: reads their own items",
}


class SeedingService:
    """Seeds the blueprints of an org from the catalog as it is at that moment; idempotent (an
    org seeded once is never seeded again, even after its roles were edited or deleted)."""

    def __init__(
        self, uow: UnitOfWork, roles: RoleService, clock: Callable[[], dt.datetime]
    ) -> None:
        self._uow = uow
        self._roles = roles
        self._clock = clock

    async def seed_org(self, ctx: CallContext, org_id: str, owner_user_id: str) -> bool:
        """Seed the org's blueprints and make `owner_user_id` its Owner; False if already done."""
        org = valid_org_id(org_id)
        actor = Actor(org, f"service:{ctx.caller}")
        async with self._uow() as tx:
            if await tx.roles.seeded(org):
                return False
            catalog = Catalog(e.spec for e in await tx.catalog.permissions())
            revision = await tx.revisions.bump(org)
            now = self._clock()
            seeded: dict[Blueprint, RoleRecord] = {}
            for blueprint, role_name in BLUEPRINT_NAMES.items():
                role = RoleRecord(
                    id=uuid.uuid4(),
                    org_id=org,
                    name=role_name,
                    description=_DESCRIPTIONS[blueprint],
                    created_at=now,
                    updated_at=now,
                    revision=revision,
                    grants=blueprint_grants(blueprint, catalog),
                    blueprint=blueprint,
                )
                await tx.roles.add(role)
                seeded[blueprint] = role
            await record_write(
                tx,
                ctx,
                actor,
                revision,
                events_pb2.POLICY_CHANGE_KIND_SEED,
                Change(
                    "authz.blueprint.seed",
                    "authz.role",
                    org,
                    diff={
                        "roles": {r.name: len(r.grants) for r in seeded.values()},
                        "owner_user_id": owner_user_id,
                    },
                ),
            )
            if owner_user_id:
                await self._roles.assign_as_seed(
                    tx, ctx, actor, seeded[Blueprint.OWNER], owner_user_id
                )
        return True

    async def seed_platform_root(self, ctx: CallContext, platform_org: str, user_id: str) -> bool:
        """Make `user_id` a holder of the platform root role of `platform_org` (created on first
        use); the only way to the root (Z6): users can neither assign nor edit that role.
        Idempotent; False when the user held it already."""
        org = valid_org_id(platform_org)
        actor = Actor(org, f"service:{ctx.caller}")
        async with self._uow() as tx:
            role = await tx.roles.by_name(org, ROOT_ROLE_NAME)
            if role is None:
                revision = await tx.revisions.bump(org)
                now = self._clock()
                role = RoleRecord(
                    id=uuid.uuid4(),
                    org_id=org,
                    name=ROOT_ROLE_NAME,
                    description="Operates the platform: every platform.* permission",
                    created_at=now,
                    updated_at=now,
                    revision=revision,
                    grants=frozenset(),
                    blueprint=Blueprint.PLATFORM_ROOT,
                )
                await tx.roles.add(role)
            if await tx.assignments.current(org, user_id, role.id) is not None:
                return False
            await self._roles.assign_as_seed(tx, ctx, actor, role, user_id)
        return True
