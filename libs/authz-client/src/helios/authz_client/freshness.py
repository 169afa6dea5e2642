"""How fresh a decision must be (the Zanzibar zookie idea) and whether a cached snapshot is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from helios.proto.authz.v1 import authz_pb2

__all__ = [
    "FULLY_CONSISTENT",
    "MINIMIZE_LATENCY",
    "AtLeastAsFresh",
    "Consistency",
    "FreshnessPolicy",
    "FullyConsistent",
    "MinimizeLatency",
    "consistency_to_proto",
    "usable",
]


@dataclass(frozen=True, slots=True)
class MinimizeLatency:
    """Any recent state will do: converges within `max_staleness`, or at once while NATS
    announcements are being received."""


@dataclass(frozen=True, slots=True)
class AtLeastAsFresh:
    """State at least as new as `revision`, typically one a write returned."""

    revision: int


@dataclass(frozen=True, slots=True)
class FullyConsistent:
    """The latest committed state: no cache is used."""


Consistency: TypeAlias = MinimizeLatency | AtLeastAsFresh | FullyConsistent

MINIMIZE_LATENCY = MinimizeLatency()
FULLY_CONSISTENT = FullyConsistent()


def consistency_to_proto(consistency: Consistency) -> authz_pb2.Consistency:
    """The requirement as the authz RPCs take it."""
    if isinstance(consistency, AtLeastAsFresh):
        return authz_pb2.Consistency(at_least_as_fresh=consistency.revision)
    if isinstance(consistency, FullyConsistent):
        return authz_pb2.Consistency(fully_consistent=True)
    return authz_pb2.Consistency(minimize_latency=True)


@dataclass(frozen=True, slots=True)
class FreshnessPolicy:
    """Ages in seconds: a snapshot younger than `max_staleness` serves minimize_latency even
    without announcements; none older than `hard_ceiling` is ever used, announced or not."""

    max_staleness: float = 1.0
    hard_ceiling: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_staleness <= self.hard_ceiling or self.hard_ceiling <= 0:
            raise ValueError("need 0 <= max_staleness <= hard_ceiling and hard_ceiling > 0")


def usable(
    policy: FreshnessPolicy,
    consistency: Consistency,
    *,
    revision: int,
    fetched_at: float,
    now: float,
    covered_since: float | None,
) -> bool:
    """Whether a snapshot read at `revision`, fetched (the fetch started) at `fetched_at`, may
    answer a request with `consistency` at `now`. `covered_since` is when the current unbroken
    run of NATS announcements began (None when not receiving them): a snapshot fetched since then
    would have been dropped on a change, so its age does not matter below the hard ceiling."""
    age = now - fetched_at
    if age >= policy.hard_ceiling:
        return False
    if isinstance(consistency, FullyConsistent):
        return False
    if isinstance(consistency, AtLeastAsFresh):
        return revision >= consistency.revision
    if age < policy.max_staleness:
        return True
    return covered_since is not None and fetched_at >= covered_since
