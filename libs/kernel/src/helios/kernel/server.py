"""gRPC server bootstrap: mTLS, the call interceptor, health (also on an optional plaintext
health-only listener), reflection, background tasks, stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from helios.kernel.interceptors import CallInterceptor
from helios.kernel.principal import AssertionVerifier
from helios.kernel.tls import CertFiles, server_credentials

__all__ = ["GrpcService", "serve_until_signal"]

log = logging.getLogger(__name__)
_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_MAX_HEALTH_MESSAGE_BYTES = 4 * 1024  # a HealthCheckRequest carries one service name
BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class GrpcService:
    """One service process: a grpc.aio server plus background loops (outbox relay, consumers)."""

    def __init__(
        self,
        name: str,
        certs: CertFiles,
        verifier: AssertionVerifier,
        *,
        edge_callers: frozenset[str] = frozenset({"gateway"}),
    ) -> None:
        self.name = name
        self._certs = certs
        self.server = grpc.aio.server(
            interceptors=[CallInterceptor(verifier, edge_callers)],
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = [health.SERVICE_NAME, reflection.SERVICE_NAME]
        self._background: list[BackgroundTask] = []
        self._startup: list[Callable[[], Awaitable[object]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._health_listener: grpc.aio.Server | None = None
        self.port = 0
        self.health_port = 0

    def add_service(self, full_name: str, register: Callable[[grpc.aio.Server], None]) -> None:
        """Register one proto service (its full name is what health and reflection report)."""
        register(self.server)
        self._service_names.append(full_name)

    def add_background(self, task: BackgroundTask) -> None:
        """Run `task(stop_event)` while the server runs; it must return soon after stop is set."""
        self._background.append(task)

    def add_startup(self, step: Callable[[], Awaitable[object]]) -> None:
        """Await `step()` before the server binds (state the RPCs need from the first call on,
        e.g. configuration read from the database); a failing step fails `start`."""
        self._startup.append(step)

    async def start(self, host: str, port: int, *, health_port: int | None = None) -> int:
        """Run the startup steps, bind with mutual TLS, start serving and the background tasks;
        returns the bound port.

        With `health_port` (0: any free port, bound port in `self.health_port`) a second server
        listens in plaintext on host:health_port and serves only grpc.health.v1.Health from the
        same servicer (no business service, no reflection): the kubelet's `grpc:` probe cannot
        present a client certificate. Both are bound before either starts, so a port in use
        fails `start` with nothing served."""
        for step in self._startup:
            await step()
        reflection.enable_server_reflection(self._service_names, self.server)
        self.port = self.server.add_secure_port(f"{host}:{port}", server_credentials(self._certs))
        if health_port is not None:
            self._health_listener = self._health_only_server()
            self.health_port = self._health_listener.add_insecure_port(f"{host}:{health_port}")
        await self.server.start()
        if self._health_listener is not None:
            await self._health_listener.start()
        for task in self._background:
            self._tasks.append(asyncio.create_task(task(self._stop)))
        for service_name in [*self._service_names, ""]:
            await self.health.set(service_name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving", extra={"service": self.name, "port": self.port})
        return self.port

    def _health_only_server(self) -> grpc.aio.Server:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", _MAX_HEALTH_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_HEALTH_MESSAGE_BYTES),
            ]
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        return server

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING (the health listener keeps answering so while calls drain),
        finish in-flight calls within `grace`, then close the health listener and stop the
        background tasks."""
        await self.health.enter_graceful_shutdown()
        self._stop.set()
        await self.server.stop(grace)
        if self._health_listener is not None:
            await self._health_listener.stop(0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve_until_signal(
    service: GrpcService, host: str, port: int, grace: float, *, health_port: int | None = None
) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully (`health_port`: see `start`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start(host, port, health_port=health_port)
    await stop.wait()
    log.info("stopping", extra={"service": service.name})
    await service.stop(grace)
