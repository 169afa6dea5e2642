"""The permission catalog: services register what they declare in code; everyone may read it."""

from __future__ import annotations

from helios.authz.domain.blueprints import TENANT_BLUEPRINTS, blueprint_grants
from helios.authz.domain.model import RegisteredPermission
from helios.authz.ports import AuthzTransaction, UnitOfWork
from helios.authz.service.access import HELIOS_SERVICES, Access, Actor
from helios.authz.service.decisions import CATALOG_REVISION_KEY
from helios.authz.service.writes import page_size, record_write
from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.permissions import Catalog, PermissionSpec
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import AlreadyExistsError, InvalidArgumentError, PermissionDeniedError
from helios.proto.authz.v1 import events_pb2

__all__ = ["CatalogService"]


class CatalogService:
    """RegisterPermissions (idempotent; a changed spec is refused; a product service registers
    only keys of its own module) and ListPermissions with the org's effective dangerous flags
    (D1 defaults + D2 marks)."""

    def __init__(self, uow: UnitOfWork, access: Access, registrars: frozenset[str]) -> None:
        self._uow = uow
        self._access = access
        self._registrars = registrars

    async def register(
        self, ctx: CallContext, service: str, specs: list[PermissionSpec]
    ) -> tuple[list[str], int]:
        """Add the service's permissions; returns the new keys and the catalog revision. A key
        registered with another spec or by another service is refused (nothing is written)."""
        if ctx.principal is not None or ctx.caller not in self._registrars:
            raise PermissionDeniedError("only Helios services register permissions")
        if service != ctx.caller:
            raise PermissionDeniedError(
                f"service {service!r} does not match the caller's identity {ctx.caller!r}"
            )
        keys = [spec.key for spec in specs]
        if len(set(keys)) != len(keys):
            raise InvalidArgumentError("permission keys must be unique", field="permissions")
        if service not in HELIOS_SERVICES:
            foreign = sorted(str(k) for k in keys if k.module != service)
            if foreign:
                raise PermissionDeniedError(
                    f"a product service registers only {service}.* keys; refused: "
                    + ", ".join(foreign[:10])
                )
        async with self._uow() as tx:
            existing = {e.spec.key: e for e in await tx.catalog.permissions(keys)}
            new: list[RegisteredPermission] = []
            for spec in specs:
                known = existing.get(spec.key)
                if known is None:
                    new.append(RegisteredPermission(spec, service))
                elif known.spec != spec or known.service != service:
                    raise AlreadyExistsError(
                        f"permission {spec.key} is already registered by {known.service}"
                        " with a different description, dangerous flag or scopes",
                        field="permissions",
                    )
            if not new:
                return [], await tx.revisions.current(CATALOG_REVISION_KEY)
            await tx.catalog.add_permissions(new)
            revision = await tx.revisions.bump(CATALOG_REVISION_KEY)
            added = [str(e.spec.key) for e in new]
            orgs = await self._extend_blueprints(tx, Catalog(e.spec for e in new))
            await record_write(
                tx,
                ctx,
                Actor("", f"service:{service}"),
                revision,
                events_pb2.POLICY_CHANGE_KIND_CATALOG,
                Change(
                    "authz.permission.register",
                    "authz.permission",
                    service,
                    diff={"added": added, "blueprint_orgs_extended": len(orgs)},
                ),
            )
        return added, revision

    @staticmethod
    async def _extend_blueprints(tx: AuthzTransaction, new: Catalog) -> set[str]:
        """Seeded blueprint roles follow the catalog: each gets what its rule grants of the new
        keys (an org's own removals stay removed: only new keys are added)."""
        orgs: set[str] = set()
        for blueprint in TENANT_BLUEPRINTS:
            orgs.update(
                await tx.roles.extend_blueprints(blueprint, blueprint_grants(blueprint, new))
            )
        return orgs

    async def page(
        self, ctx: CallContext, org_id: str, service: str, size: int, page_token: str
    ) -> tuple[list[tuple[RegisteredPermission, bool]], str, int]:
        """A page of the catalog, each entry with the org's effective dangerous flag (a service
        asking without an org gets the defaults)."""
        if ctx.principal is None and not org_id:
            if ctx.caller not in self._registrars:
                raise PermissionDeniedError("this caller may not read the catalog")
            org = ""
        else:
            actor = await self._access.authorize(
                ctx, org_id, "authz.permission.list", "authz.permission"
            )
            org = actor.org_id
        limit = page_size(size)
        async with self._uow() as tx:
            entries = await tx.catalog.permissions(
                None, service=service, after=page_token, limit=limit + 1
            )
            revision = await tx.revisions.current(CATALOG_REVISION_KEY)
            marked = await tx.dangerous.patterns(org) if org else frozenset[str]()
        page = entries[:limit]
        next_token = str(page[-1].spec.key) if len(entries) > limit else ""
        flagged = [(e, is_dangerous(e.spec.key, e.spec.dangerous, marked)) for e in page]
        return flagged, next_token, revision
