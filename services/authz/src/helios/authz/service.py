"""Authz's use cases: the permission catalog, roles, assignments, Check and PlanList."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from helios.authz.domain.dangerous import dangerous_class, is_dangerous
from helios.authz.domain.evaluator import (
    AI_FORBIDDEN_PATTERNS,
    ActorType,
    Decision,
    Resource,
    Subject,
    blanket_refusal,
    decide,
    usable_grants,
)
from helios.authz.domain.model import (
    AssignmentRecord,
    HeldGrant,
    RegisteredPermission,
    RoleRecord,
)
from helios.authz.domain.permissions import (
    Catalog,
    Grant,
    PermissionKey,
    PermissionSpec,
    key_matches,
    parse_key,
    validate_tenant_grants,
)
from helios.authz.domain.plan import Plan, plan_list
from helios.authz.ports import AuthzTransaction, UnitOfWork
from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "CATALOG_REVISION_KEY",
    "HELIOS_SERVICES",
    "AuthzService",
    "CheckResult",
    "DenyReason",
    "PlanResult",
]

HELIOS_SERVICES: frozenset[str] = frozenset(
    {"identity", "authz", "ai-broker", "audit", "keyvault", "gateway"}
)
"""mTLS identities that may register permissions and ask on behalf of a principal."""

CATALOG_REVISION_KEY = "*"
"""The revision counter of the platform-wide permission catalog."""

_ACTOR_TYPES = {
    principal_pb2.ACTOR_TYPE_USER: ActorType.USER,
    principal_pb2.ACTOR_TYPE_AI: ActorType.AI,
    principal_pb2.ACTOR_TYPE_SYSTEM: ActorType.SYSTEM,
}
_MAX_PAGE = 500


class DenyReason(enum.Enum):
    """Why a decision denied (NONE when it allowed)."""

    NONE = "none"
    UNKNOWN_PERMISSION = "unknown_permission"
    NO_GRANT = "no_grant"
    SCOPE_MISMATCH = "scope_mismatch"
    OTHER_ORG = "other_org"
    AI_NARROWING = "ai_narrowing"
    PLATFORM_RESERVED = "platform_reserved"
    AI_FORBIDDEN = "ai_forbidden"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A decision with the held grant that decided it, ready to be served."""

    decision: Decision
    held: HeldGrant | None
    deny_reason: DenyReason
    dangerous: bool
    decision_id: str
    revision: int


@dataclass(frozen=True, slots=True)
class PlanResult:
    """A list plan with its decision id, dangerous flag and revision."""

    plan: Plan
    decision_id: str
    dangerous: bool
    revision: int


def _deny_reason(
    subject: Subject, key: PermissionKey, spec: PermissionSpec | None, resource: Resource
) -> DenyReason:
    """The deny reason of decide(), following its order of rules."""
    if spec is None:
        return DenyReason.UNKNOWN_PERMISSION
    if blanket_refusal(subject, key) is not None:
        if subject.actor_type is ActorType.AI:
            if any(key_matches(p, key) for p in AI_FORBIDDEN_PATTERNS):
                return DenyReason.AI_FORBIDDEN
            if subject.ai_narrowing is not None and str(key) not in subject.ai_narrowing:
                return DenyReason.AI_NARROWING
        return DenyReason.PLATFORM_RESERVED
    if resource.org_id != subject.org_id:
        return DenyReason.OTHER_ORG
    if not usable_grants(subject, key, spec):
        return DenyReason.NO_GRANT
    return DenyReason.SCOPE_MISMATCH


class AuthzService:
    """Use cases over the ports; reads are fully consistent (straight from PostgreSQL)."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Callable[[], dt.datetime],
        *,
        registrars: frozenset[str] = HELIOS_SERVICES,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._registrars = registrars

    # --- access -------------------------------------------------------------------------------

    def org_of(self, ctx: CallContext, requested: str) -> str:
        """The org a role write acts in. Until the org-admin check exists (an admin's own
        `authz.role.create` / `authz.role_assignment.create` grants, issue #5), roles are
        administered only by Helios services by their mTLS identity (identity seeding an org's
        owner, for instance): a user principal is refused, so nobody can grant themselves more."""
        if ctx.principal is not None:
            raise PermissionDeniedError(
                "role administration by users needs the org admin check, which is not built yet"
            )
        if ctx.caller not in self._registrars:
            raise PermissionDeniedError("this caller may not administer roles")
        if not requested:
            raise InvalidArgumentError("org_id is required", field="org_id")
        return requested

    def _acting(
        self, ctx: CallContext, requested: principal_pb2.Principal | None
    ) -> principal_pb2.Principal:
        """Whose rights a decision is about: a user asks only about itself; a Helios service
        (by its mTLS identity) asks about the principal it received."""
        if ctx.principal is not None:
            if requested is not None and (
                requested.actor_id != ctx.principal.actor_id
                or requested.org_id != ctx.principal.org_id
            ):
                raise PermissionDeniedError("a principal may only ask about its own rights")
            return ctx.principal
        if ctx.caller not in self._registrars:
            raise PermissionDeniedError("this caller may not ask authz for decisions")
        if requested is None:
            raise InvalidArgumentError("principal is required", field="principal")
        return requested

    async def _subject(
        self,
        tx: AuthzTransaction,
        principal: principal_pb2.Principal,
        ai_narrowing: Iterable[str],
    ) -> tuple[Subject, list[HeldGrant]]:
        actor_type = _ACTOR_TYPES.get(principal.actor_type)
        if actor_type is None:
            raise InvalidArgumentError("principal.actor_type is required", field="principal")
        if not principal.actor_id or not principal.org_id:
            raise InvalidArgumentError(
                "principal needs an actor_id and an org_id", field="principal"
            )
        narrowing = frozenset(str(parse_key(k)) for k in ai_narrowing)
        held = await tx.held_grants(principal.org_id, principal.actor_id)
        subject = Subject(
            actor_type=actor_type,
            actor_id=principal.actor_id,
            org_id=principal.org_id,
            grants=frozenset(h.grant for h in held),
            ai_narrowing=narrowing if actor_type is ActorType.AI and narrowing else None,
        )
        return subject, held

    @staticmethod
    async def _catalog(tx: AuthzTransaction, keys: Iterable[PermissionKey]) -> Catalog:
        return Catalog(entry.spec for entry in await tx.permissions(list(keys)))

    # --- catalog ------------------------------------------------------------------------------

    async def register_permissions(
        self, ctx: CallContext, service: str, specs: list[PermissionSpec]
    ) -> tuple[list[str], int]:
        """Add the service's permissions to the catalog; idempotent. Returns the new keys and
        the catalog revision. A key registered with another spec or by another service is
        refused with AlreadyExistsError (nothing is written)."""
        if ctx.principal is not None or ctx.caller not in self._registrars:
            raise PermissionDeniedError("only Helios services register permissions")
        if service != ctx.caller:
            raise PermissionDeniedError(
                f"service {service!r} does not match the caller's identity {ctx.caller!r}"
            )
        keys = [spec.key for spec in specs]
        if len(set(keys)) != len(keys):
            raise InvalidArgumentError("permission keys must be unique", field="permissions")
        async with self._uow() as tx:
            existing = {e.spec.key: e for e in await tx.permissions(keys)}
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
                return [], await tx.revision(CATALOG_REVISION_KEY)
            await tx.add_permissions(new)
            revision = await tx.bump_revision(CATALOG_REVISION_KEY)
            added = [str(e.spec.key) for e in new]
            await tx.record(
                Change(
                    "authz.permission.register",
                    "authz.permission",
                    service,
                    diff={"added": added, "revision": revision},
                ),
                ctx,
            )
        return added, revision

    async def list_permissions(
        self, ctx: CallContext, service: str, page_size: int, page_token: str
    ) -> tuple[list[tuple[RegisteredPermission, bool]], str, int]:
        """A page of the catalog, each entry with its effective dangerous flag (D1; D2 comes
        with the org settings), the next page token and the catalog revision."""
        if ctx.principal is None and ctx.caller not in self._registrars:
            raise PermissionDeniedError("this caller may not read the catalog")
        if page_size < 0:
            raise InvalidArgumentError("page_size must not be negative", field="page_size")
        size = min(page_size or _MAX_PAGE, _MAX_PAGE)
        async with self._uow() as tx:
            entries = await tx.permissions(None, service=service, after=page_token, limit=size + 1)
            revision = await tx.revision(CATALOG_REVISION_KEY)
        page = entries[:size]
        next_token = str(page[-1].spec.key) if len(entries) > size else ""
        flagged = [(e, is_dangerous(e.spec.key, e.spec.dangerous, frozenset())) for e in page]
        return flagged, next_token, revision

    # --- roles --------------------------------------------------------------------------------

    async def create_role(
        self, ctx: CallContext, org_id: str, name: str, description: str, grants: list[Grant]
    ) -> RoleRecord:
        """A custom role of the caller's org; platform.*, unknown keys and scopes the spec does
        not allow are refused with InvalidArgumentError. Audited with the granted permissions."""
        org = self.org_of(ctx, org_id)
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidArgumentError("name must be 1-100 characters", field="name")
        if "\n" in description or len(description) > 500:
            raise InvalidArgumentError(
                "description must be one line of at most 500 characters", field="description"
            )
        wanted = frozenset(grants)
        validate_tenant_grants(wanted)
        async with self._uow() as tx:
            validate_tenant_grants(wanted, await self._catalog(tx, {g.key for g in wanted}))
            revision = await tx.bump_revision(org)
            role = RoleRecord(
                id=uuid.uuid4(),
                org_id=org,
                name=name,
                description=description,
                created_at=self._clock(),
                revision=revision,
                grants=wanted,
            )
            await tx.add_role(role)
            await tx.record(
                Change(
                    "authz.role.create",
                    "authz.role",
                    str(role.id),
                    org_id=org,
                    diff={
                        "name": name,
                        "grants_added": [str(g) for g in sorted(wanted)],
                        "revision": revision,
                    },
                ),
                ctx,
            )
        return role

    async def assign_role(
        self, ctx: CallContext, org_id: str, role_id: str, user_id: str
    ) -> AssignmentRecord:
        """Give a user of the caller's org a role of that org; idempotent (an existing
        assignment is returned unchanged). A role assignment is dangerous (D1): audited so."""
        org = self.org_of(ctx, org_id)
        try:
            parsed = uuid.UUID(role_id)
        except ValueError:
            raise InvalidArgumentError("role_id is not a UUID", field="role_id") from None
        if not user_id or len(user_id) > 64:
            raise InvalidArgumentError("user_id must be 1-64 characters", field="user_id")
        action = "authz.role.assign"
        async with self._uow() as tx:
            role = await tx.role(parsed)
            if role is None or role.org_id != org:
                raise NotFoundError("no such role in this org")
            existing = await tx.current_assignment(org, user_id, parsed)
            if existing is not None:
                return existing
            revision = await tx.bump_revision(org)
            assignment = AssignmentRecord(
                id=uuid.uuid4(),
                org_id=org,
                user_id=user_id,
                role_id=parsed,
                granted_by=f"service:{ctx.caller}",
                created_at=self._clock(),
                revision=revision,
            )
            await tx.add_assignment(assignment)
            cls = dangerous_class(action)
            await tx.record(
                Change(
                    action,
                    "authz.roleAssignment",
                    str(assignment.id),
                    org_id=org,
                    diff={
                        "user_id": user_id,
                        "role_id": str(parsed),
                        "role_name": role.name,
                        "grants_added": [str(g) for g in sorted(role.grants)],
                        "dangerous": is_dangerous(action, False, frozenset()),
                        "dangerous_class": cls.name if cls else "",
                        "granted_by": assignment.granted_by,
                        "revision": revision,
                    },
                ),
                ctx,
            )
        return assignment

    # --- decisions ----------------------------------------------------------------------------

    async def check(
        self,
        ctx: CallContext,
        principal: principal_pb2.Principal | None,
        permission: str,
        resource: Resource | None,
        ai_narrowing: Iterable[str] = (),
    ) -> CheckResult:
        """Allow or deny `permission` on `resource` (None: a type-level check in the principal's
        org; an empty org_id means the principal's org). Unknown permission: deny; malformed
        key: InvalidArgumentError."""
        acting = self._acting(ctx, principal)
        key = parse_key(permission)
        async with self._uow() as tx:
            subject, held = await self._subject(tx, acting, ai_narrowing)
            catalog = await self._catalog(tx, [key])
            revision = await tx.revision(subject.org_id)
        target = resource or Resource(type="", id="", org_id="")
        if not target.org_id:
            target = replace(target, org_id=subject.org_id)
        decision = decide(subject, key, target, catalog)
        spec = catalog.get(key)
        held_grant = next((h for h in held if h.grant == decision.grant), None)
        return CheckResult(
            decision=decision,
            held=held_grant if decision.allowed else None,
            deny_reason=DenyReason.NONE
            if decision.allowed
            else _deny_reason(subject, key, spec, target),
            dangerous=spec is not None and is_dangerous(key, spec.dangerous, frozenset()),
            decision_id=str(uuid.uuid4()),
            revision=revision,
        )

    async def plan_list(
        self,
        ctx: CallContext,
        principal: principal_pb2.Principal | None,
        permission: str,
        resource_type: str,
        ai_narrowing: Iterable[str] = (),
    ) -> PlanResult:
        """The filter that keeps exactly the rows Check would allow (Z5)."""
        acting = self._acting(ctx, principal)
        key = parse_key(permission)
        if not resource_type or len(resource_type) > 200:
            raise InvalidArgumentError(
                "resource_type must be 1-200 characters", field="resource_type"
            )
        async with self._uow() as tx:
            subject, _ = await self._subject(tx, acting, ai_narrowing)
            catalog = await self._catalog(tx, [key])
            revision = await tx.revision(subject.org_id)
        spec = catalog.get(key)
        return PlanResult(
            plan=plan_list(subject, key, resource_type, catalog),
            decision_id=str(uuid.uuid4()),
            dangerous=spec is not None and is_dangerous(key, spec.dangerous, frozenset()),
            revision=revision,
        )
