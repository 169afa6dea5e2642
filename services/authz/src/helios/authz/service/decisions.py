"""Decisions: Check, CheckBatch, PlanList, Explain and subject snapshots, served from caches."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from helios.authz.domain.model import DecisionRecord, HeldGrant, SubjectFacts
from helios.authz.ports import DecisionLog, UnitOfWork
from helios.authz.service.caches import (
    MINIMIZE_LATENCY,
    CatalogCache,
    Consistency,
    Freshness,
    SubjectCache,
)
from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.evaluator import (
    AI_FORBIDDEN_PATTERNS,
    ActorType,
    Decision,
    Resource,
    Subject,
    blanket_refusal,
    decide,
    usable_grants,
)
from helios.authz_rules.explain import Step, explain
from helios.authz_rules.permissions import Catalog, PermissionKey, key_matches, parse_key
from helios.authz_rules.plan import Plan, PlanKind, plan_list
from helios.kernel.context import CallContext
from helios.kernel.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from helios.proto.common.v1 import principal_pb2

__all__ = [
    "CATALOG_REVISION_KEY",
    "MAX_BATCH",
    "CheckResult",
    "DecisionService",
    "DenyReason",
    "ExplainResult",
    "PlanResult",
    "Query",
]

CATALOG_REVISION_KEY = "*"
"""The revision counter of the platform-wide permission catalog."""

MAX_BATCH = 1000
_ACTOR_TYPES = {
    principal_pb2.ACTOR_TYPE_USER: ActorType.USER,
    principal_pb2.ACTOR_TYPE_AI: ActorType.AI,
    principal_pb2.ACTOR_TYPE_SYSTEM: ActorType.SYSTEM,
}
_ACTOR_NAMES = {v: k for k, v in _ACTOR_TYPES.items()}


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


@dataclass(frozen=True, slots=True)
class Query:
    """A decision request: who, what, on which resource, with which AI narrowing."""

    principal: principal_pb2.Principal | None
    permission: str
    resource: Resource | None
    ai_narrowing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExplainResult:
    """The decision as of `check.revision` and the path that led to it; `held` maps each
    grant of the path to how the principal held it then."""

    check: CheckResult
    steps: list[Step]
    held: tuple[HeldGrant, ...]


def deny_reason(
    subject: Subject, key: PermissionKey, catalog: Catalog, resource: Resource
) -> DenyReason:
    """The deny reason of decide(), following its order of rules."""
    spec = catalog.get(key)
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


def _validated(principal: principal_pb2.Principal) -> ActorType:
    actor_type = _ACTOR_TYPES.get(principal.actor_type)
    if actor_type is None:
        raise InvalidArgumentError("principal.actor_type is required", field="principal")
    if not principal.actor_id or not principal.org_id:
        raise InvalidArgumentError("principal needs an actor_id and an org_id", field="principal")
    return actor_type


def subject_of(
    principal: principal_pb2.Principal, facts: SubjectFacts, ai_narrowing: Iterable[str]
) -> Subject:
    """The rules' view of the principal: for an AI, its user's grants, narrowed if asked."""
    actor_type = _validated(principal)
    narrowing = frozenset(str(parse_key(k)) for k in ai_narrowing)
    return Subject(
        actor_type=actor_type,
        actor_id=principal.actor_id,
        org_id=principal.org_id,
        team_ids=facts.team_ids,
        grants=frozenset(h.grant for h in facts.held),
        ai_narrowing=narrowing if actor_type is ActorType.AI and narrowing else None,
        is_platform_root=facts.platform_root,
    )


def _principal_dict(principal: principal_pb2.Principal) -> dict[str, str]:
    return {
        "actor_type": _ACTOR_TYPES[principal.actor_type].value,
        "actor_id": principal.actor_id,
        "org_id": principal.org_id,
        "session_id": principal.session_id,
        "impersonator_id": principal.impersonator_id,
    }


def _resource_dict(resource: Resource) -> dict[str, str]:
    return {
        "type": resource.type,
        "id": resource.id,
        "org_id": resource.org_id,
        "owner_id": resource.owner_id or "",
        "team_id": resource.team_id or "",
    }


def _query_of(record: DecisionRecord) -> Query:
    p = record.principal
    names = {t.value: t for t in ActorType}
    principal = principal_pb2.Principal(
        actor_type=_ACTOR_NAMES[names[p["actor_type"]]],
        actor_id=p["actor_id"],
        org_id=p["org_id"],
        session_id=p.get("session_id", ""),
        impersonator_id=p.get("impersonator_id", ""),
    )
    r = record.resource
    resource = Resource(
        type=r["type"],
        id=r["id"],
        org_id=r["org_id"],
        owner_id=r["owner_id"] or None,
        team_id=r["team_id"] or None,
    )
    return Query(principal, record.permission, resource, record.ai_narrowing)


class DecisionService:
    """Answers from per-replica caches (see SubjectCache for freshness) and records every
    decision for Explain. A user may ask only about itself; a Helios service (by its mTLS
    identity) asks on behalf of the principal it received."""

    def __init__(
        self,
        uow: UnitOfWork,
        log: DecisionLog,
        clock: Callable[[], dt.datetime],
        registrars: frozenset[str],
        *,
        subjects: SubjectCache | None = None,
        catalog: CatalogCache | None = None,
    ) -> None:
        self._uow = uow
        self._log = log
        self._clock = clock
        self._registrars = registrars
        self.subjects = subjects or SubjectCache()
        self.catalog_cache = catalog or CatalogCache()
        self._catalog_seen = 0

    # --- inputs -------------------------------------------------------------------------------

    def acting(
        self, ctx: CallContext, requested: principal_pb2.Principal | None
    ) -> principal_pb2.Principal:
        """Whose rights a decision is about."""
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
        _validated(requested)
        return requested

    async def facts(
        self, principal: principal_pb2.Principal, consistency: Consistency = MINIMIZE_LATENCY
    ) -> SubjectFacts:
        """The principal's user's facts, from the cache when fresh enough."""
        cached = self.subjects.get(principal.org_id, principal.actor_id, consistency)
        if cached is not None:
            return cached
        async with self._uow() as tx:
            facts = await tx.subjects.facts(principal.org_id, principal.actor_id)
            catalog_revision = await tx.revisions.current(CATALOG_REVISION_KEY)
        self._catalog_seen = max(self._catalog_seen, catalog_revision)
        self.subjects.put(facts)
        return facts

    async def catalog(
        self, keys: Iterable[str] = (), consistency: Consistency = MINIMIZE_LATENCY
    ) -> Catalog:
        """The catalog, reloaded when stale or missing one of `keys`; a fully consistent read
        also reloads it when the catalog revision read with the facts is newer than the cache."""
        wanted = list(keys)
        stale = self.catalog_cache.needs_load(wanted)
        if consistency.freshness is Freshness.FULLY_CONSISTENT:
            stale = stale or self._catalog_seen > self.catalog_cache.revision
        if stale:
            async with self._uow() as tx:
                revision = await tx.revisions.current(CATALOG_REVISION_KEY)
                entries = await tx.catalog.permissions()
            self.catalog_cache.load(entries, revision)
        return self.catalog_cache.catalog()

    # --- decisions ----------------------------------------------------------------------------

    def _decide(
        self,
        principal: principal_pb2.Principal,
        query: Query,
        subject: Subject,
        facts: SubjectFacts,
        catalog: Catalog,
        *,
        record: bool = True,
    ) -> CheckResult:
        key = parse_key(query.permission)
        target = query.resource or Resource(type="", id="", org_id="")
        if not target.org_id:
            target = replace(target, org_id=subject.org_id)
        decision = decide(subject, key, target, catalog)
        spec = catalog.get(key)
        held = next((h for h in facts.held if h.grant == decision.grant), None)
        result = CheckResult(
            decision=decision,
            held=held if decision.allowed else None,
            deny_reason=DenyReason.NONE
            if decision.allowed
            else deny_reason(subject, key, catalog, target),
            dangerous=spec is not None
            and is_dangerous(key, spec.dangerous, facts.dangerous_patterns),
            decision_id=str(uuid.uuid4()),
            revision=facts.revision,
        )
        if record:
            self._record(
                "check",
                principal,
                query,
                target,
                result.decision_id,
                facts.revision,
                decision.allowed,
            )
        return result

    def _record(
        self,
        kind: str,
        principal: principal_pb2.Principal,
        query: Query,
        target: Resource,
        decision_id: str,
        revision: int,
        allowed: bool,
    ) -> None:
        self._log.add(
            DecisionRecord(
                id=uuid.UUID(decision_id),
                org_id=principal.org_id,
                revision=revision,
                created_at=self._clock(),
                kind=kind,
                principal=_principal_dict(principal),
                permission=query.permission,
                resource=_resource_dict(target),
                ai_narrowing=tuple(query.ai_narrowing),
                allowed=allowed,
            )
        )

    async def check(
        self, ctx: CallContext, query: Query, consistency: Consistency = MINIMIZE_LATENCY
    ) -> CheckResult:
        """Allow or deny (Z1): unknown permission -> deny; malformed key -> InvalidArgumentError."""
        principal = self.acting(ctx, query.principal)
        key = parse_key(query.permission)
        facts = await self.facts(principal, consistency)
        catalog = await self.catalog([str(key)], consistency)
        subject = subject_of(principal, facts, query.ai_narrowing)
        return self._decide(principal, query, subject, facts, catalog)

    async def check_batch(
        self,
        ctx: CallContext,
        principal: principal_pb2.Principal | None,
        items: Sequence[tuple[str, Resource | None]],
        ai_narrowing: tuple[str, ...],
        consistency: Consistency = MINIMIZE_LATENCY,
    ) -> tuple[list[CheckResult], int]:
        """One decision per item, all at the same revision, in request order."""
        acting = self.acting(ctx, principal)
        if not items:
            raise InvalidArgumentError("items must not be empty", field="items")
        if len(items) > MAX_BATCH:
            raise InvalidArgumentError(f"at most {MAX_BATCH} items", field="items")
        keys = [str(parse_key(permission)) for permission, _ in items]
        facts = await self.facts(acting, consistency)
        catalog = await self.catalog(keys, consistency)
        subject = subject_of(acting, facts, ai_narrowing)
        results = [
            self._decide(
                acting, Query(acting, permission, resource, ai_narrowing), subject, facts, catalog
            )
            for permission, resource in items
        ]
        return results, facts.revision

    async def plan_list(
        self,
        ctx: CallContext,
        query: Query,
        resource_type: str,
        consistency: Consistency = MINIMIZE_LATENCY,
    ) -> PlanResult:
        """The filter that keeps exactly the rows Check would allow (Z5)."""
        principal = self.acting(ctx, query.principal)
        key = parse_key(query.permission)
        if not resource_type or len(resource_type) > 200:
            raise InvalidArgumentError(
                "resource_type must be 1-200 characters", field="resource_type"
            )
        facts = await self.facts(principal, consistency)
        catalog = await self.catalog([str(key)], consistency)
        subject = subject_of(principal, facts, query.ai_narrowing)
        plan = plan_list(subject, key, resource_type, catalog)
        spec = catalog.get(key)
        decision_id = str(uuid.uuid4())
        target = Resource(type=resource_type, id="", org_id=principal.org_id)
        self._record(
            "plan",
            principal,
            query,
            target,
            decision_id,
            facts.revision,
            plan.kind is not PlanKind.ALWAYS_DENIED,
        )
        return PlanResult(
            plan=plan,
            decision_id=decision_id,
            dangerous=spec is not None
            and is_dangerous(key, spec.dangerous, facts.dangerous_patterns),
            revision=facts.revision,
        )

    async def explain(
        self,
        org_id: str,
        target: str | Query,
        at_revision: int,
    ) -> ExplainResult:
        """Replay a recorded decision (by id, which the answer keeps) or a query (no id) at
        revision `at_revision` (0: the decision's own revision, or now for a query) from the
        grant history."""
        if isinstance(target, str):
            try:
                decision_id = uuid.UUID(target)
            except ValueError:
                raise InvalidArgumentError(
                    "decision_id is not a UUID", field="decision_id"
                ) from None
            record = await self._log.get(decision_id)
            if record is None or record.org_id != org_id:
                raise NotFoundError("no such decision in this org")
            query = _query_of(record)
            at: int | None = at_revision or record.revision
            replayed = str(record.id)
        else:
            query = target
            if query.principal is None:
                raise InvalidArgumentError("query.principal is required", field="query")
            _validated(query.principal)
            if query.principal.org_id != org_id:
                raise InvalidArgumentError(
                    "the query's principal must belong to the org", field="query"
                )
            at, replayed = at_revision or None, ""
        if at_revision < 0:
            raise InvalidArgumentError("at_revision must not be negative", field="at_revision")
        principal = query.principal
        assert principal is not None
        async with self._uow() as tx:
            current = await tx.revisions.current(org_id)
            if at is not None and at > current:
                raise InvalidArgumentError(
                    f"at_revision {at} is newer than the org's revision {current}",
                    field="at_revision",
                )
            facts = await tx.subjects.facts(org_id, principal.actor_id, at)
        catalog = await self.catalog([query.permission])
        subject = subject_of(principal, facts, query.ai_narrowing)
        target_resource = query.resource or Resource(type="", id="", org_id=org_id)
        check = replace(
            self._decide(principal, query, subject, facts, catalog, record=False),
            decision_id=replayed,
        )
        _, steps = explain(
            subject, query.permission, target_resource, catalog, facts.dangerous_patterns
        )
        return ExplainResult(check=check, steps=steps, held=facts.held)

    async def snapshot(
        self,
        ctx: CallContext,
        principal: principal_pb2.Principal | None,
        consistency: Consistency = MINIMIZE_LATENCY,
    ) -> tuple[SubjectFacts, int]:
        """The principal's facts and the catalog revision, for an in-process evaluator."""
        acting = self.acting(ctx, principal)
        facts = await self.facts(acting, consistency)
        await self.catalog((), consistency)
        return facts, self.catalog_cache.revision
