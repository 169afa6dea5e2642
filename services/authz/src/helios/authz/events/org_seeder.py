"""Seeds the blueprint roles of every new org, reacting to identity's org creation event."""

from __future__ import annotations

import asyncio
import logging

from google.protobuf.json_format import MessageToDict
from nats.aio.msg import Msg

from helios.authz.service.seeding import SeedingService
from helios.kernel.bus import AUDIT_STREAM, Bus, audit_subject
from helios.kernel.bus_tracing import consuming
from helios.kernel.context import CallContext
from helios.kernel.pull_consumer import consume
from helios.proto.audit.v1 import events_pb2

__all__ = ["ORG_CREATED_SUBJECT", "OrgSeeder"]

log = logging.getLogger(__name__)

ORG_CREATED_SUBJECT = audit_subject("identity", "identity.org.create")
"""Identity's audited org creation doubles as `org.created` (its diff names the owner)."""
_DURABLE = "authz-org-seeder"


class OrgSeeder:
    """Durable JetStream consumer shared by authz replicas. A message is acknowledged after the
    seeding committed (or was found done: seeding is idempotent), so a crash re-seeds nothing
    twice and misses no org. An event without an org id is acknowledged and logged."""

    def __init__(self, bus: Bus, seeding: SeedingService) -> None:
        self._bus = bus
        self._seeding = seeding

    async def _handle(self, data: bytes) -> None:
        event = events_pb2.AuditEvent.FromString(data)
        if not event.org_id:
            log.warning("org creation event without org id", extra={"event_id": event.event_id})
            return
        owner = str(MessageToDict(event.diff).get("owner_user_id", ""))
        seeded = await self._seeding.seed_org(CallContext(caller="authz"), event.org_id, owner)
        log.info("org blueprints", extra={"org_id": event.org_id, "seeded": seeded})

    async def _handle_all(self, messages: list[Msg]) -> None:
        # Each message's CONSUMER span continues the trace of the request that created the org.
        with consuming(messages):
            for message in messages:
                await self._handle(message.data)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`, reconnecting with backoff while NATS is away."""
        await consume(
            self._bus,
            subject=ORG_CREATED_SUBJECT,
            durable=_DURABLE,
            stream=AUDIT_STREAM,
            handle=self._handle_all,
            stop=stop,
            log=log,
            batch_size=10,
        )
