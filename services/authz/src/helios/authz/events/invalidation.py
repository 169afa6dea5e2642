"""Listens to policy announcements and drops stale cache entries in this replica."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from helios.authz.domain.announcements import CATALOG_SUBJECT, POLICY_SUBJECT_PREFIX
from helios.authz.service.decisions import DecisionService
from helios.kernel.bus import Bus
from helios.kernel.retrying import retry_until_done
from helios.proto.authz.v1 import events_pb2

__all__ = ["POLICY_STREAM", "PolicyListener"]

log = logging.getLogger(__name__)

POLICY_STREAM = "AUTHZ_POLICY"
"""Holds announcements briefly so the outbox relay's publishes are acknowledged."""
_MAX_AGE_SECONDS = 3600


class PolicyListener:
    """Core NATS subscriber of `authz.policy.changed.>` and `authz.catalog.changed`. While NATS
    is away, announcements are missed: the caches' ttl still bounds staleness (1 s default)."""

    def __init__(self, bus: Bus, decisions: DecisionService) -> None:
        self._bus = bus
        self._decisions = decisions
        self.received = 0

    async def _on_message(self, message: Msg) -> None:
        try:
            changed = events_pb2.PolicyChanged.FromString(message.data)
        except Exception:
            log.warning("malformed policy announcement", extra={"subject": message.subject})
            return
        self.received += 1
        if message.subject == CATALOG_SUBJECT:
            self._decisions.catalog_cache.announced()
            self._decisions.subjects.clear()
            return
        self._decisions.subjects.announced(
            changed.metadata.org_id, changed.metadata.revision, changed.affected_user_ids
        )

    async def _listen(self, stop: asyncio.Event) -> None:
        js = await self._bus.jetstream()
        config = StreamConfig(
            name=POLICY_STREAM,
            subjects=[POLICY_SUBJECT_PREFIX + ">", CATALOG_SUBJECT],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=_MAX_AGE_SECONDS,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
        client = self._bus.client
        assert client is not None  # jetstream() connected it
        subs = [
            await client.subscribe(POLICY_SUBJECT_PREFIX + ">", cb=self._on_message),
            await client.subscribe(CATALOG_SUBJECT, cb=self._on_message),
        ]
        try:
            await stop.wait()
        finally:
            for sub in subs:
                await sub.unsubscribe()

    async def run(self, stop: asyncio.Event) -> None:
        """Subscribe (creating the stream if needed) until `stop`; retry while NATS is away."""
        await retry_until_done("policy listener", lambda: self._listen(stop), stop, log)
