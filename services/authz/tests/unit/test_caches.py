"""Subject and catalog caches: which read may use which entry, and what announcements drop (Z1)."""

from __future__ import annotations

import pytest

from helios.authz.domain.model import RegisteredPermission, SubjectFacts
from helios.authz.service.caches import (
    MINIMIZE_LATENCY,
    CatalogCache,
    Consistency,
    Freshness,
    SubjectCache,
)
from helios.authz_rules.permissions import permission

pytestmark = pytest.mark.unit

FULL = Consistency(Freshness.FULLY_CONSISTENT)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _facts(user: str = "u1", revision: int = 5, org: str = "o1") -> SubjectFacts:
    return SubjectFacts(org, user, revision, (), frozenset(), frozenset())


def test_z1_minimize_latency_serves_young_entries_only() -> None:
    clock = Clock()
    cache = SubjectCache(ttl=1.0, clock=clock)
    cache.put(_facts())
    assert cache.get("o1", "u1", MINIMIZE_LATENCY) == _facts()
    clock.now += 0.99
    assert cache.get("o1", "u1", MINIMIZE_LATENCY) is not None
    clock.now += 0.02
    assert cache.get("o1", "u1", MINIMIZE_LATENCY) is None


def test_z1_at_least_as_fresh_compares_revisions_and_fully_consistent_never_hits() -> None:
    cache = SubjectCache(ttl=60)
    cache.put(_facts(revision=5))
    assert cache.get("o1", "u1", Consistency(Freshness.AT_LEAST_AS_FRESH, 5)) is not None
    assert cache.get("o1", "u1", Consistency(Freshness.AT_LEAST_AS_FRESH, 6)) is None
    assert cache.get("o1", "u1", FULL) is None


def test_z1_announcement_drops_older_entries_of_the_named_users_or_the_whole_org() -> None:
    cache = SubjectCache(ttl=60)
    for user in ("u1", "u2"):
        cache.put(_facts(user))
    cache.put(_facts("u1", org="o2"))
    assert cache.announced("o1", 6, ["u1"]) == 1
    assert cache.get("o1", "u1", MINIMIZE_LATENCY) is None
    assert cache.get("o1", "u2", MINIMIZE_LATENCY) is not None
    assert cache.announced("o1", 7) == 1
    assert cache.get("o1", "u2", MINIMIZE_LATENCY) is None
    assert cache.get("o2", "u1", MINIMIZE_LATENCY) is not None


def test_z1_entry_loaded_before_an_org_announcement_is_not_served_after_it() -> None:
    """A load racing an announcement may put facts older than the announced revision."""
    cache = SubjectCache(ttl=60)
    cache.announced("o1", 9)
    cache.put(_facts(revision=8))
    assert cache.get("o1", "u1", MINIMIZE_LATENCY) is None
    cache.put(_facts(revision=9))
    assert cache.get("o1", "u1", MINIMIZE_LATENCY) is not None


def test_z1_subject_cache_is_bounded() -> None:
    cache = SubjectCache(ttl=60, max_entries=2)
    for user in ("u1", "u2", "u3"):
        cache.put(_facts(user))
    assert cache.get("o1", "u1", MINIMIZE_LATENCY) is None
    assert cache.get("o1", "u3", MINIMIZE_LATENCY) is not None


def test_z2_catalog_cache_reloads_when_stale_announced_or_missing_a_key() -> None:
    clock = Clock()
    cache = CatalogCache(ttl=5.0, clock=clock)
    assert cache.needs_load([])
    entry = RegisteredPermission(permission("x.doc.read", "Read."), "identity")
    cache.load([entry], revision=3)
    assert cache.revision == 3
    assert not cache.needs_load(["x.doc.read"])
    assert cache.catalog().get("x.doc.read") == entry.spec
    assert not cache.needs_load(["x.doc.write"]), "a reload just happened"
    clock.now += 0.1
    assert cache.needs_load(["x.doc.write"])
    assert not cache.needs_load(["x.doc.read"])
    cache.announced()
    assert cache.needs_load(["x.doc.read"])
    cache.load([entry], revision=4)
    clock.now += 5.0
    assert cache.needs_load([])
