"""The snapshot cache: drops on announcements, the announced floor, LRU bound (Z1)."""

from __future__ import annotations

import pytest

from helios.authz_client.cache import SnapshotCache
from helios.authz_client.snapshot import SubjectKey, SubjectSnapshot, snapshot_of
from helios.authz_rules.evaluator import ActorType

pytestmark = pytest.mark.unit

USER = ActorType.USER


def _snap(org: str, user: str, revision: int) -> SubjectSnapshot:
    return snapshot_of(org, user, (), revision=revision, catalog_revision=1)


def _key(org: str, user: str) -> SubjectKey:
    return (org, user, USER)


def test_z1_announcement_drops_only_older_snapshots_of_affected_users() -> None:
    cache = SnapshotCache()
    for user in ("u1", "u2"):
        assert cache.put(_key("o", user), _snap("o", user, 5), 0.0)
    cache.put(_key("p", "u1"), _snap("p", "u1", 5), 0.0)

    assert cache.announce("o", 5, ["u1"]) == 0  # already at that revision
    assert cache.announce("o", 6, ["u1"]) == 1
    assert cache.get(_key("o", "u1")) is None
    assert cache.get(_key("o", "u2")) is not None
    assert cache.get(_key("p", "u1")) is not None

    assert cache.announce("o", 7) == 1  # empty: every user of the org
    assert cache.get(_key("o", "u2")) is None
    assert cache.get(_key("p", "u1")) is not None
    assert len(cache) == 1


def test_z1_a_fetch_that_raced_an_announcement_is_not_stored() -> None:
    cache = SnapshotCache()
    cache.announce("o", 9, ["someone-else"])
    assert not cache.put(_key("o", "u1"), _snap("o", "u1", 8), 0.0)
    assert cache.get(_key("o", "u1")) is None
    assert cache.put(_key("o", "u1"), _snap("o", "u1", 9), 0.0)
    cache.announce("o", 3)  # late and out of order: the floor stays at 9
    assert not cache.put(_key("o", "u2"), _snap("o", "u2", 8), 0.0)


def test_z1_an_older_snapshot_never_replaces_a_newer_one() -> None:
    cache = SnapshotCache()
    cache.put(_key("o", "u1"), _snap("o", "u1", 7), 1.0)
    assert not cache.put(_key("o", "u1"), _snap("o", "u1", 6), 2.0)
    entry = cache.get(_key("o", "u1"))
    assert entry is not None
    assert entry.snapshot.revision == 7
    assert cache.put(_key("o", "u1"), _snap("o", "u1", 7), 3.0)
    entry = cache.get(_key("o", "u1"))
    assert entry is not None
    assert entry.fetched_at == 3.0


def test_z1_cache_evicts_the_least_recently_used() -> None:
    cache = SnapshotCache(max_entries=2)
    cache.put(_key("o", "a"), _snap("o", "a", 1), 0.0)
    cache.put(_key("o", "b"), _snap("o", "b", 1), 0.0)
    assert cache.get(_key("o", "a")) is not None
    cache.put(_key("o", "c"), _snap("o", "c", 1), 0.0)
    assert cache.get(_key("o", "b")) is None
    assert cache.get(_key("o", "a")) is not None
    assert len(cache) == 2
    assert cache.announce("o", 2) == 2
    assert len(cache) == 0


def test_z1_drop_org_and_clear() -> None:
    cache = SnapshotCache()
    cache.put(_key("o", "a"), _snap("o", "a", 1), 0.0)
    cache.put(_key("p", "a"), _snap("p", "a", 1), 0.0)
    cache.drop_org("o")
    assert cache.get(_key("o", "a")) is None
    assert cache.get(_key("p", "a")) is not None
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_entries"):
        SnapshotCache(0)
