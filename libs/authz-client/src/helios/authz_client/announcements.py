"""Authz's policy and catalog announcements on core NATS, and whether we are hearing them."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from google.protobuf.message import DecodeError

from helios.proto.authz.v1 import events_pb2

__all__ = [
    "CATALOG_SUBJECT",
    "POLICY_PREFIX",
    "POLICY_SUBJECTS",
    "Announcements",
    "NatsConnection",
    "NatsSubscription",
]

log = logging.getLogger(__name__)

POLICY_PREFIX = "authz.policy.changed."
POLICY_SUBJECTS = POLICY_PREFIX + ">"
CATALOG_SUBJECT = "authz.catalog.changed"


class NatsSubscription(Protocol):
    """The part of a nats-py subscription we use."""

    async def unsubscribe(self, limit: int = 0) -> None: ...


class NatsConnection(Protocol):
    """The part of a connected nats-py client we use; its `stats["reconnects"]` counts
    reconnections (messages published while disconnected are lost on core NATS)."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def stats(self) -> dict[str, int]: ...

    async def subscribe(
        self, subject: str, *, cb: Callable[[Any], Awaitable[None]]
    ) -> NatsSubscription: ...

    async def flush(self) -> None: ...


PolicyListener = Callable[[str, int, Iterable[str]], None]
"""(org_id, revision, affected user ids; empty: every user of the org)."""
CatalogListener = Callable[[int | None], None]
"""(catalog revision; None when the announcement could not be read)."""
UnreadableListener = Callable[[str], None]
"""(org_id, empty when unknown): an announcement for the org that could not be read."""


class Announcements:
    """Subscribes to authz's announcements and hands them to the listeners. `covered_since()`
    says since when announcements have been received without a gap: a snapshot fetched since
    then is dropped on any change, so it stays valid until the hard ceiling."""

    def __init__(
        self,
        on_policy: PolicyListener,
        on_catalog: CatalogListener,
        on_unreadable: UnreadableListener,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_policy = on_policy
        self._on_catalog = on_catalog
        self._on_unreadable = on_unreadable
        self._clock = clock
        self._nc: NatsConnection | None = None
        self._subscriptions: list[NatsSubscription] = []
        self._reconnects = 0
        self._live_since: float | None = None

    async def start(self, nc: NatsConnection) -> None:
        """Subscribe on `nc` (which the caller owns and closes) and wait until the server has
        the subscriptions; from then on snapshots are covered. Call once."""
        if self._nc is not None:
            raise RuntimeError("announcements already started")
        self._nc = nc
        self._subscriptions = [
            await nc.subscribe(POLICY_SUBJECTS, cb=self._receive),
            await nc.subscribe(CATALOG_SUBJECT, cb=self._receive),
        ]
        await nc.flush()
        self._reconnects = nc.stats.get("reconnects", 0)
        self._live_since = self._clock()

    async def close(self) -> None:
        """Unsubscribe (best effort: a closed connection has no subscriptions left);
        idempotent. Snapshots are no longer covered afterwards."""
        subscriptions, self._subscriptions = self._subscriptions, []
        self._live_since = None
        nc, self._nc = self._nc, None
        if nc is None or not nc.is_connected:
            return
        for subscription in subscriptions:
            try:
                await subscription.unsubscribe()
            except Exception:  # closing must not fail on a dying connection
                log.debug("unsubscribe failed", exc_info=True)

    def covered_since(self) -> float | None:
        """When the current gap-free run of announcements began, or None while not receiving
        them (not started, disconnected). A reconnection starts a new run: announcements
        published during the outage are lost, so older snapshots are no longer covered."""
        nc = self._nc
        if nc is None or self._live_since is None or not nc.is_connected:
            return None
        reconnects = nc.stats.get("reconnects", 0)
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            self._live_since = self._clock()
        return self._live_since

    async def _receive(self, msg: Any) -> None:
        self.handle(str(msg.subject), bytes(msg.data))

    def handle(self, subject: str, data: bytes) -> None:
        """Dispatch one announcement. A PolicyChanged that cannot be read drops the org's
        snapshots (or all, when the org is unknown); a catalog one marks the catalog stale."""
        try:
            changed = events_pb2.PolicyChanged.FromString(data)
        except DecodeError:
            changed = None
        if subject == CATALOG_SUBJECT:
            revision = changed.metadata.revision if changed is not None else 0
            self._on_catalog(revision if revision > 0 else None)
            return
        if not subject.startswith(POLICY_PREFIX):
            return
        org_from_subject = subject.removeprefix(POLICY_PREFIX)
        if changed is None or changed.metadata.revision <= 0:
            log.warning("unreadable authz policy announcement", extra={"subject": subject})
            self._on_unreadable(org_from_subject)
            return
        org = changed.metadata.org_id or org_from_subject
        if not org:
            self._on_unreadable("")
            return
        self._on_policy(org, changed.metadata.revision, changed.affected_user_ids)
