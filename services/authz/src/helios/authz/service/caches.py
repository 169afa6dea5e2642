"""Per-replica caches of subject facts and the catalog, kept current by revisions."""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from helios.authz.domain.model import RegisteredPermission, SubjectFacts
from helios.authz_rules.permissions import Catalog

__all__ = [
    "MINIMIZE_LATENCY",
    "CatalogCache",
    "Consistency",
    "Freshness",
    "SubjectCache",
]


class Freshness(enum.Enum):
    """How fresh a read must be."""

    MINIMIZE_LATENCY = "minimize_latency"
    AT_LEAST_AS_FRESH = "at_least_as_fresh"
    FULLY_CONSISTENT = "fully_consistent"


@dataclass(frozen=True, slots=True)
class Consistency:
    """A read's freshness requirement; `revision` is used by AT_LEAST_AS_FRESH."""

    freshness: Freshness
    revision: int = 0


MINIMIZE_LATENCY = Consistency(Freshness.MINIMIZE_LATENCY)


class SubjectCache:
    """Facts per (org, user). An entry serves MINIMIZE_LATENCY while younger than `ttl` and not
    older than the org's latest announced revision; AT_LEAST_AS_FRESH(R) while its revision >= R;
    FULLY_CONSISTENT never. Announcements (NATS) drop stale entries at once; the ttl bounds
    staleness when announcements are lost (NATS away)."""

    def __init__(
        self,
        *,
        ttl: float = 1.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[SubjectFacts, float]] = OrderedDict()
        self._floors: dict[str, int] = {}

    def get(self, org_id: str, user_id: str, consistency: Consistency) -> SubjectFacts | None:
        """A usable cached entry, or None (the caller loads and puts)."""
        if consistency.freshness is Freshness.FULLY_CONSISTENT:
            return None
        found = self._entries.get((org_id, user_id))
        if found is None:
            return None
        facts, loaded = found
        if consistency.freshness is Freshness.AT_LEAST_AS_FRESH:
            return facts if facts.revision >= consistency.revision else None
        fresh = self._clock() - loaded < self._ttl
        return facts if fresh and facts.revision >= self._floors.get(org_id, 0) else None

    def put(self, facts: SubjectFacts) -> None:
        """Keep freshly loaded facts (the oldest entry goes when full)."""
        key = (facts.org_id, facts.user_id)
        self._entries[key] = (facts, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry (the catalog changed: blueprint roles may have grown)."""
        self._entries.clear()

    def announced(self, org_id: str, revision: int, user_ids: Collection[str] = ()) -> int:
        """The org is now at `revision`: drop older entries of the given users (empty: every
        user of the org). Returns how many entries were dropped."""
        if not user_ids:
            self._floors[org_id] = max(self._floors.get(org_id, 0), revision)
        stale = [
            key
            for key, (facts, _) in self._entries.items()
            if key[0] == org_id
            and facts.revision < revision
            and (not user_ids or key[1] in user_ids)
        ]
        for key in stale:
            del self._entries[key]
        return len(stale)


class CatalogCache:
    """The whole permission catalog (it only grows and is small), reloaded when announced, when
    older than `ttl`, or when asked for a key it does not hold (at most every 50 ms, so unknown
    keys cannot turn every Check into a catalog read)."""

    def __init__(self, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, RegisteredPermission] = {}
        self._catalog = Catalog(())
        self._loaded = float("-inf")
        self.revision = 0

    def needs_load(self, keys: Collection[str]) -> bool:
        """Whether the cache must be reloaded before answering for `keys`."""
        age = self._clock() - self._loaded
        if age >= self._ttl:
            return True
        return False if age < 0.05 else any(k not in self._entries for k in keys)

    def load(self, entries: list[RegisteredPermission], revision: int) -> None:
        """Replace the cache with the catalog as read at `revision`."""
        self._entries = {str(e.spec.key): e for e in entries}
        self._catalog = Catalog(e.spec for e in entries)
        self.revision = revision
        self._loaded = self._clock()

    def announced(self) -> None:
        """The catalog changed: the next read reloads it."""
        self._loaded = float("-inf")

    def entry(self, key: str) -> RegisteredPermission | None:
        """The cached entry of `key`, or None."""
        return self._entries.get(key)

    def catalog(self) -> Catalog:
        """The cached catalog as the rules take it."""
        return self._catalog
