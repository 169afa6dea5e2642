"""Announcements: PolicyChanged and catalog changes dispatched, coverage across reconnects (Z1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from helios.authz_client.announcements import CATALOG_SUBJECT, POLICY_SUBJECTS, Announcements
from helios.proto.authz.v1 import events_pb2

pytestmark = pytest.mark.unit


class StandInSubscription:
    """A stand-in for a nats-py subscription (unit tests only)."""

    def __init__(self) -> None:
        self.unsubscribed = False

    async def unsubscribe(self, limit: int = 0) -> None:
        self.unsubscribed = True


class StandInNats:
    """A stand-in for a connected nats-py client (unit tests only; the integration tests use a
    real NATS server): records subscriptions and reconnections."""

    def __init__(self) -> None:
        self.is_connected = True
        self.stats = {"reconnects": 0}
        self.subjects: list[str] = []
        self.subscriptions: list[StandInSubscription] = []

    async def subscribe(
        self, subject: str, *, cb: Callable[[Any], Awaitable[None]]
    ) -> StandInSubscription:
        self.subjects.append(subject)
        self.subscriptions.append(StandInSubscription())
        return self.subscriptions[-1]

    async def flush(self) -> None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.policy: list[tuple[str, int, list[str]]] = []
        self.catalog: list[int | None] = []
        self.unreadable: list[str] = []

    def on_policy(self, org: str, revision: int, users: Iterable[str]) -> None:
        self.policy.append((org, revision, list(users)))

    def on_catalog(self, revision: int | None) -> None:
        self.catalog.append(revision)

    def on_unreadable(self, org: str) -> None:
        self.unreadable.append(org)


def _changed(org: str, revision: int, *users: str) -> bytes:
    return events_pb2.PolicyChanged(
        metadata=events_pb2.EventMetadata(org_id=org, revision=revision),
        kind=events_pb2.POLICY_CHANGE_KIND_ROLE_ASSIGNMENT,
        affected_user_ids=list(users),
    ).SerializeToString()


def _announcements(recorder: Recorder, clock: list[float]) -> Announcements:
    return Announcements(
        recorder.on_policy, recorder.on_catalog, recorder.on_unreadable, lambda: clock[0]
    )


def test_z1_policy_and_catalog_announcements_are_dispatched() -> None:
    recorder = Recorder()
    announcements = _announcements(recorder, [0.0])
    announcements.handle("authz.policy.changed.o1", _changed("o1", 7, "u1", "u2"))
    announcements.handle("authz.policy.changed.o2", _changed("", 3))
    announcements.handle("authz.policy.changed.o3", b"\xff\xff not a proto")
    announcements.handle("authz.policy.changed.o4", _changed("o4", 0))
    catalog = events_pb2.PolicyChanged(
        metadata=events_pb2.EventMetadata(revision=12), kind=events_pb2.POLICY_CHANGE_KIND_CATALOG
    )
    announcements.handle(CATALOG_SUBJECT, catalog.SerializeToString())
    announcements.handle(CATALOG_SUBJECT, b"\xff\xff")
    announcements.handle("something.else", _changed("o1", 9))
    assert recorder.policy == [("o1", 7, ["u1", "u2"]), ("o2", 3, [])]
    assert recorder.unreadable == ["o3", "o4"]
    assert recorder.catalog == [12, None]


async def test_z1_coverage_starts_at_subscription_and_restarts_after_a_reconnect() -> None:
    recorder = Recorder()
    clock = [10.0]
    announcements = _announcements(recorder, clock)
    assert announcements.covered_since() is None
    nats = StandInNats()
    await announcements.start(nats)
    assert nats.subjects == [POLICY_SUBJECTS, CATALOG_SUBJECT]
    assert announcements.covered_since() == 10.0
    with pytest.raises(RuntimeError, match="already started"):
        await announcements.start(nats)

    clock[0] = 20.0
    nats.is_connected = False
    assert announcements.covered_since() is None
    nats.is_connected = True
    nats.stats["reconnects"] = 1
    assert announcements.covered_since() == 20.0
    clock[0] = 25.0
    assert announcements.covered_since() == 20.0

    await announcements.close()
    assert all(s.unsubscribed for s in nats.subscriptions)
    assert announcements.covered_since() is None
    await announcements.close()
