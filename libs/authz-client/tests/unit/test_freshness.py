"""Freshness rules of cached snapshots: minimize_latency, at_least_as_fresh, fully_consistent,
the hard ceiling and announcement coverage (Z1)."""

from __future__ import annotations

import pytest

from helios.authz_client.freshness import (
    FULLY_CONSISTENT,
    MINIMIZE_LATENCY,
    AtLeastAsFresh,
    Consistency,
    FreshnessPolicy,
    consistency_to_proto,
    usable,
)

pytestmark = pytest.mark.unit

POLICY = FreshnessPolicy(max_staleness=1.0, hard_ceiling=30.0)


def _usable(
    consistency: Consistency,
    *,
    age: float,
    revision: int = 5,
    covered: float | None = None,
    fetched_at: float = 100.0,
) -> bool:
    return usable(
        POLICY,
        consistency,
        revision=revision,
        fetched_at=fetched_at,
        now=fetched_at + age,
        covered_since=covered,
    )


def test_z1_minimize_latency_uses_a_snapshot_younger_than_max_staleness() -> None:
    assert _usable(MINIMIZE_LATENCY, age=0.0)
    assert _usable(MINIMIZE_LATENCY, age=0.99)
    assert not _usable(MINIMIZE_LATENCY, age=1.0)
    assert not _usable(MINIMIZE_LATENCY, age=5.0)


def test_z1_minimize_latency_uses_an_announced_snapshot_up_to_the_hard_ceiling() -> None:
    assert _usable(MINIMIZE_LATENCY, age=5.0, covered=100.0)
    assert _usable(MINIMIZE_LATENCY, age=29.9, covered=50.0)
    assert not _usable(MINIMIZE_LATENCY, age=30.0, covered=50.0)
    # fetched before the current run of announcements began: not covered
    assert not _usable(MINIMIZE_LATENCY, age=5.0, covered=100.5)


def test_z1_at_least_as_fresh_needs_the_revision_and_respects_the_ceiling() -> None:
    assert _usable(AtLeastAsFresh(5), age=20.0, revision=5)
    assert _usable(AtLeastAsFresh(4), age=0.0, revision=5)
    assert not _usable(AtLeastAsFresh(6), age=0.0, revision=5, covered=0.0)
    assert not _usable(AtLeastAsFresh(5), age=30.0, revision=5)


def test_z1_fully_consistent_never_uses_a_cached_snapshot() -> None:
    assert not _usable(FULLY_CONSISTENT, age=0.0, covered=0.0)


def test_z1_policy_rejects_a_ceiling_below_the_staleness() -> None:
    with pytest.raises(ValueError, match="hard_ceiling"):
        FreshnessPolicy(max_staleness=5.0, hard_ceiling=1.0)
    with pytest.raises(ValueError, match="hard_ceiling"):
        FreshnessPolicy(max_staleness=0.0, hard_ceiling=0.0)


def test_z1_consistency_converts_to_the_proto_oneof() -> None:
    assert consistency_to_proto(MINIMIZE_LATENCY).WhichOneof("requirement") == "minimize_latency"
    assert consistency_to_proto(FULLY_CONSISTENT).fully_consistent
    fresh = consistency_to_proto(AtLeastAsFresh(42))
    assert fresh.WhichOneof("requirement") == "at_least_as_fresh"
    assert fresh.at_least_as_fresh == 42
