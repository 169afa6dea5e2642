"""The parts every service process shares, built once by its wiring: engine, bus, relay, server."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.descriptor import ServiceDescriptor
from grpc import aio
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from helios.kernel.bus import Bus
from helios.kernel.db import create_engine, session_factory
from helios.kernel.outbox import OutboxRelay
from helios.kernel.principal import AssertionVerifier, load_public_keys
from helios.kernel.server import GrpcService
from helios.kernel.settings import GrpcSettings, KernelSettings, ServiceSettings
from helios.kernel.tls import CertFiles, client_ssl_context

__all__ = [
    "ProcessRuntime",
    "ServiceRuntime",
    "StatelessRuntime",
    "cert_files",
    "nats_tls",
    "verifier_from",
]


def cert_files(settings: KernelSettings) -> CertFiles:
    """This process's mTLS files from its settings."""
    return CertFiles(
        ca=settings.tls_ca_file, cert=settings.tls_cert_file, key=settings.tls_key_file
    )


def nats_tls(settings: KernelSettings, url: str) -> ssl.SSLContext | None:
    """The process's mutual-TLS context (its own certificate, the Helios CA) when `url` names
    `tls://` NATS servers, else None."""
    return client_ssl_context(cert_files(settings)) if url.startswith("tls://") else None


def verifier_from(settings: KernelSettings) -> AssertionVerifier:
    """A verifier of principal assertions with the configured public keys (each file may hold
    several while a key is rotated; the AI broker's for AI principals only)."""
    ai_keys = settings.ai_principal_public_key_file
    return AssertionVerifier(
        load_public_keys(settings.principal_public_key_file),
        load_public_keys(ai_keys) if ai_keys is not None else None,
    )


class ProcessRuntime(Protocol):
    """What the command line runs: a gRPC service and the resources to release after it stops."""

    grpc: GrpcService

    async def close(self) -> None:
        """Release connections after the server stopped."""
        ...


@dataclass
class StatelessRuntime:
    """A process with no database or bus of its own yet (its issue has not landed)."""

    grpc: GrpcService

    @classmethod
    def serving(
        cls,
        name: str,
        settings: GrpcSettings,
        descriptor: ServiceDescriptor,
        register: Callable[[aio.Server], None],
    ) -> StatelessRuntime:
        """A process serving one proto service (plus health and reflection)."""
        service = GrpcService(name, cert_files(settings), verifier_from(settings))
        service.add_service(descriptor.full_name, register)
        return cls(grpc=service)

    async def close(self) -> None:
        """Nothing to release."""


@dataclass
class ServiceRuntime:
    """Engine, sessions, bus, outbox relay and gRPC server of one service process."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    relay: OutboxRelay
    grpc: GrpcService

    @classmethod
    def build(cls, name: str, settings: ServiceSettings, outbox: Table) -> ServiceRuntime:
        """Build (without connecting) and register the relay as a background task."""
        engine = create_engine(settings.database_url.get_secret_value(), settings.database_role)
        sessions = session_factory(engine)
        bus = Bus(
            settings.nats_url,
            f"helios-{name}",
            settings.nats_stream_replicas,
            nats_tls(settings, settings.nats_url),
        )
        relay = OutboxRelay(sessions, outbox, bus)
        service = GrpcService(name, cert_files(settings), verifier_from(settings))
        service.add_background(relay.run)
        return cls(engine=engine, sessions=sessions, bus=bus, relay=relay, grpc=service)

    async def close(self) -> None:
        """Close the bus and dispose of the engine (after the server stopped)."""
        await asyncio.gather(self.bus.close(), return_exceptions=True)
        await self.engine.dispose()
