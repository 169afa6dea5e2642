"""LocalEvaluator: authz's decisions made in-process from cached snapshots, else by the RPC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from helios.authz_client.announcements import Announcements, NatsConnection
from helios.authz_client.cache import SnapshotCache
from helios.authz_client.catalog import CatalogState
from helios.authz_client.decisions import LocalDecision, LocalPlan
from helios.authz_client.freshness import (
    MINIMIZE_LATENCY,
    AtLeastAsFresh,
    Consistency,
    FreshnessPolicy,
    MinimizeLatency,
    usable,
)
from helios.authz_client.ports import AuthzSource
from helios.authz_client.snapshot import (
    SubjectKey,
    SubjectSnapshot,
    narrowing_of,
    subject_key,
    subject_of,
)
from helios.authz_rules.dangerous import is_dangerous
from helios.authz_rules.evaluator import Resource, decide
from helios.authz_rules.permissions import Catalog, PermissionKey, parse_key
from helios.authz_rules.plan import plan_list
from helios.kernel.errors import InvalidArgumentError, UnavailableError
from helios.proto.common.v1 import principal_pb2

__all__ = ["LocalEvaluator"]

_MAX_RESOURCE_TYPE = 200


def _retrieve(task: asyncio.Task[SubjectSnapshot]) -> None:
    """Mark a shared fetch's outcome as seen even when every waiter was cancelled."""
    if not task.cancelled():
        task.exception()


class LocalEvaluator:
    """Decides like authz's Check and PlanList, from per-(org, actor) subject snapshots and the
    catalog fetched from authz and kept current by its NATS announcements.

    Freshness (the Zanzibar zookie idea): minimize_latency uses a snapshot younger than
    `policy.max_staleness`, or any while announcements are received without a gap (they drop
    stale ones at once); at_least_as_fresh(R) uses one read at revision R or later, else fetches
    with that requirement; fully_consistent always fetches. No snapshot older than
    `policy.hard_ceiling` is ever used. When authz cannot serve a snapshot or the catalog in
    time, the Check / PlanList RPC decides; when that fails too, UnavailableError propagates:
    never an allow without a decision.

    One instance per event loop; it owns no connection (the caller closes the gRPC channel
    and the NATS client)."""

    def __init__(
        self,
        source: AuthzSource,
        *,
        policy: FreshnessPolicy | None = None,
        max_entries: int = 10_000,
        catalog_refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._policy = policy or FreshnessPolicy()
        self._clock = clock
        self._cache = SnapshotCache(max_entries)
        self._catalog = CatalogState(catalog_refresh_interval)
        self._catalog_lock = asyncio.Lock()
        self._inflight: dict[SubjectKey, asyncio.Task[SubjectSnapshot]] = {}
        self._announcements = Announcements(
            self.policy_changed, self.catalog_changed, self._unreadable, clock
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, nats_client: NatsConnection | None) -> None:
        """Listen to authz's announcements on `nats_client` (connected; the caller owns it), so
        cached snapshots stay usable until the hard ceiling; with None, minimize_latency
        converges within max_staleness instead. Raises what subscribing raises."""
        if nats_client is not None:
            await self._announcements.start(nats_client)

    async def close(self) -> None:
        """Stop listening, cancel fetches in flight and forget every snapshot; idempotent."""
        await self._announcements.close()
        inflight, self._inflight = list(self._inflight.values()), {}
        for task in inflight:
            task.cancel()
        self._cache.clear()
        self._catalog.clear()

    # --- announcements ------------------------------------------------------------------------

    def policy_changed(self, org_id: str, revision: int, user_ids: Iterable[str] = ()) -> None:
        """The org's policy is at `revision` now: drop older snapshots of `user_ids` (every user
        of the org when empty). Called for each PolicyChanged; idempotent."""
        self._cache.announce(org_id, revision, user_ids)

    def catalog_changed(self, revision: int | None) -> None:
        """The catalog is at `revision` now (None: unknown); it is fetched again before the
        next decision that needs it, and snapshots are dropped (blueprint roles grow with it)."""
        self._catalog.announced(revision, self._clock())
        self._cache.clear()

    def _unreadable(self, org_id: str) -> None:
        if org_id:
            self._cache.drop_org(org_id)
        else:
            self._cache.clear()

    # --- decisions ----------------------------------------------------------------------------

    async def check(
        self,
        principal: principal_pb2.Principal,
        permission: str | PermissionKey,
        resource: Resource | None = None,
        *,
        consistency: Consistency = MINIMIZE_LATENCY,
        ai_narrowing: Iterable[str | PermissionKey] = (),
    ) -> LocalDecision:
        """Allow or deny `permission` on `resource` for `principal`, as authz's Check would: a
        None resource is a type-level check in the principal's org, an empty resource org_id
        means the principal's org; an unknown permission is denied (after one catalog refresh);
        a malformed key, narrowing or principal raises InvalidArgumentError. For an AI
        principal, a non-empty `ai_narrowing` lists the only keys it may use."""
        key = parse_key(permission)
        narrowing = narrowing_of(ai_narrowing)
        skey = subject_key(principal)
        try:
            snapshot, catalog = await self._inputs(principal, skey, key, consistency)
        except UnavailableError:
            return await self._source.check(principal, key, resource, consistency, narrowing)
        target = resource or Resource(type="", id="", org_id="")
        if not target.org_id:
            target = replace(target, org_id=snapshot.org_id)
        decision = decide(subject_of(snapshot, skey[2], narrowing), key, target, catalog)
        return LocalDecision(
            allowed=decision.allowed,
            grant=decision.grant,
            dangerous=self._dangerous(key, catalog, snapshot),
            revision=snapshot.revision,
            reason=decision.reason,
            source="local",
            held=snapshot.holding(decision.grant) if decision.allowed else None,
        )

    async def plan_list(
        self,
        principal: principal_pb2.Principal,
        permission: str | PermissionKey,
        resource_type: str,
        *,
        consistency: Consistency = MINIMIZE_LATENCY,
        ai_narrowing: Iterable[str | PermissionKey] = (),
    ) -> LocalPlan:
        """The plan whose filter keeps exactly the rows check() allows (Z5), as authz's PlanList
        would; same errors and fallback as check()."""
        key = parse_key(permission)
        if not resource_type or len(resource_type) > _MAX_RESOURCE_TYPE:
            raise InvalidArgumentError(
                f"resource_type must be 1-{_MAX_RESOURCE_TYPE} characters", field="resource_type"
            )
        narrowing = narrowing_of(ai_narrowing)
        skey = subject_key(principal)
        try:
            snapshot, catalog = await self._inputs(principal, skey, key, consistency)
        except UnavailableError:
            return await self._source.plan_list(
                principal, key, resource_type, consistency, narrowing
            )
        plan = plan_list(subject_of(snapshot, skey[2], narrowing), key, resource_type, catalog)
        return LocalPlan(
            plan=plan,
            dangerous=self._dangerous(key, catalog, snapshot),
            revision=snapshot.revision,
            source="local",
        )

    @staticmethod
    def _dangerous(key: PermissionKey, catalog: Catalog, snapshot: SubjectSnapshot) -> bool:
        spec = catalog.get(key)
        return spec is not None and is_dangerous(key, spec.dangerous, snapshot.org_dangerous)

    async def _inputs(
        self,
        principal: principal_pb2.Principal,
        skey: SubjectKey,
        key: PermissionKey,
        consistency: Consistency,
    ) -> tuple[SubjectSnapshot, Catalog]:
        """The snapshot and catalog to decide with; UnavailableError when authz cannot serve
        them in time (the caller then asks the RPC)."""
        snapshot = await self._snapshot(principal, skey, consistency)
        return snapshot, await self._catalog_for(key, snapshot.catalog_revision)

    # --- snapshots ----------------------------------------------------------------------------

    async def _snapshot(
        self, principal: principal_pb2.Principal, key: SubjectKey, consistency: Consistency
    ) -> SubjectSnapshot:
        entry = self._cache.get(key)
        if entry is not None and usable(
            self._policy,
            consistency,
            revision=entry.snapshot.revision,
            fetched_at=entry.fetched_at,
            now=self._clock(),
            covered_since=self._announcements.covered_since(),
        ):
            return entry.snapshot
        if isinstance(consistency, MinimizeLatency):
            return await self._shared_fetch(principal, key)
        return await self._fetch(principal, key, consistency)

    async def _shared_fetch(
        self, principal: principal_pb2.Principal, key: SubjectKey
    ) -> SubjectSnapshot:
        """One minimize_latency fetch per subject at a time, whoever waits for it; a waiter's
        cancellation does not cancel the others'. Once a change was announced for the org, the
        fetch asks for at least that revision, so no cache inside authz answers from before it."""
        task = self._inflight.get(key)
        if task is None:
            floor = self._cache.floor(key[0])
            consistency = AtLeastAsFresh(floor) if floor else MINIMIZE_LATENCY
            task = asyncio.ensure_future(self._fetch(principal, key, consistency))
            task.add_done_callback(_retrieve)
            task.add_done_callback(lambda done: self._forget(key, done))
            self._inflight[key] = task
        return await asyncio.shield(task)

    def _forget(self, key: SubjectKey, task: asyncio.Task[SubjectSnapshot]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self, principal: principal_pb2.Principal, key: SubjectKey, consistency: Consistency
    ) -> SubjectSnapshot:
        started = self._clock()
        snapshot = await self._source.snapshot(principal, consistency)
        if isinstance(consistency, AtLeastAsFresh) and snapshot.revision < consistency.revision:
            raise UnavailableError("authz served a snapshot older than the revision asked for")
        self._cache.put(key, snapshot, started)
        return snapshot

    # --- catalog ------------------------------------------------------------------------------

    async def _catalog_for(self, key: PermissionKey, target: int) -> Catalog:
        """The catalog to decide about `key` with, fetched first when due (see CatalogState)."""
        state = self._catalog
        if state.current is not None and not state.due(key, target, self._clock()):
            return state.current.catalog
        async with self._catalog_lock:
            current = state.current
            if current is None or state.due(key, target, self._clock()):
                goal = state.goal(target)
                started = self._clock()
                current = await self._source.catalog()
                state.stored(current, started, goal)
            return current.catalog
