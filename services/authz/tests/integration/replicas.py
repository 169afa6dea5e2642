"""More authz replicas for consistency tests: in-process mTLS servers over the test's rolled-back
sessions, each with its own AuthzServices (so its own caches), optionally a PolicyListener on a
real NATS connection, and an OutboxRelay so that announcements really travel through NATS."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helios.authz.domain.announcements import POLICY_SUBJECT_PREFIX
from helios.authz.events.invalidation import PolicyListener
from helios.authz.rpc.servicer import AuthzServicer
from helios.authz.service.bundle import AuthzServices
from helios.authz.store import tables
from helios.authz.store.decisions import BatchedDecisionLog
from helios.authz.store.postgres import postgres_unit_of_work
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.bus import Bus
from helios.kernel.outbox import OutboxRelay
from helios.kernel.principal import (
    AssertionSigner,
    AssertionVerifier,
    load_private_key,
    load_public_key,
)
from helios.kernel.server import GrpcService
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2_grpc, events_pb2

from .conftest import SERVICE, Authz, utc_now

__all__ = ["Replica", "Replicas"]

_READY_SECONDS = 10.0


@dataclass
class Replica:
    """One more authz server; `authz` offers the same helpers as the `authz` fixture."""

    authz: Authz
    listener: PolicyListener | None = None
    bus: Bus | None = None
    task: asyncio.Task[None] | None = None


@dataclass
class Replicas:
    """Builds replicas over the test's sessions and relays the outbox to NATS on demand."""

    sessions: async_sessionmaker[AsyncSession]
    pki: dict[str, CertFiles]
    principal_keys: tuple[Path, Path]
    nats_url: str
    started: list[Replica] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _relay_bus: Bus | None = None

    async def start(self, *, cache_ttl: float, listen: bool) -> Replica:
        """A running replica whose subject cache serves entries for `cache_ttl` seconds; with
        `listen`, its PolicyListener is subscribed (checked with a probe) before this returns."""
        uow = postgres_unit_of_work(self.sessions, AuditRecorder("authz", tables.outbox), utc_now)
        services = AuthzServices.build(
            uow, BatchedDecisionLog(self.sessions), utc_now, cache_ttl=cache_ttl
        )
        servicer = AuthzServicer(services)
        server = GrpcService(
            "authz", self.pki["authz"], AssertionVerifier([load_public_key(self.principal_keys[1])])
        )
        server.add_service(
            SERVICE, lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(servicer, s)
        )
        port = await server.start("127.0.0.1", 0)
        replica = Replica(
            Authz(
                port=port,
                pki=self.pki,
                signer=AssertionSigner(load_private_key(self.principal_keys[0])),
                server=server,
                services=services,
            )
        )
        self.started.append(replica)
        if listen:
            replica.bus = Bus(self.nats_url, f"authz-replica-itest-{len(self.started)}")
            replica.listener = PolicyListener(replica.bus, services.decisions)
            replica.task = asyncio.create_task(replica.listener.run(self._stop))
            await self._until_listening(replica.listener)
        return replica

    async def _bus(self) -> Bus:
        if self._relay_bus is None:
            self._relay_bus = Bus(self.nats_url, "authz-relay-itest")
        await self._relay_bus.jetstream()
        return self._relay_bus

    async def _until_listening(self, listener: PolicyListener) -> None:
        """Publish harmless probes (an org of nobody) until the listener got one."""
        client = (await self._bus()).client
        assert client is not None
        probe = events_pb2.PolicyChanged(
            metadata=events_pb2.EventMetadata(org_id=f"probe-{uuid.uuid4().hex}", revision=0)
        )
        deadline = time.monotonic() + _READY_SECONDS
        while listener.received == 0:
            assert time.monotonic() < deadline, "the policy listener did not subscribe in time"
            await client.publish(
                POLICY_SUBJECT_PREFIX + probe.metadata.org_id, probe.SerializeToString()
            )
            await client.flush()
            await asyncio.sleep(0.05)

    async def relay(self) -> int:
        """Publish every pending outbox row of the test to JetStream (as the relay of the writing
        replica does); returns how many rows were published."""
        relay = OutboxRelay(self.sessions, tables.outbox, await self._bus())
        published = 0
        while count := await relay.publish_pending():
            published += count
        return published

    async def close(self) -> None:
        """Stop listeners and servers; close NATS connections without draining."""
        self._stop.set()
        for replica in self.started:
            if replica.task is not None:
                done, _ = await asyncio.wait({replica.task}, timeout=5)
                if not done:
                    replica.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await replica.task
            for channel in replica.authz.channels:
                await channel.close()
            await replica.authz.server.stop(0)
        for bus in [r.bus for r in self.started] + [self._relay_bus]:
            if bus is not None and bus.client is not None and not bus.client.is_closed:
                await bus.client.close()
