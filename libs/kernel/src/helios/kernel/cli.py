"""The command line of every service: `python -m helios.<svc> [serve|migrate]`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from prometheus_client import start_http_server

from helios.kernel.jsonlog import configure_logging
from helios.kernel.runtime import ProcessRuntime
from helios.kernel.server import serve_until_signal
from helios.kernel.settings import GrpcSettings, load_settings
from helios.kernel.telemetry import configure_tracing

__all__ = ["ServiceCommands", "run_cli"]

S = TypeVar("S", bound=GrpcSettings)


@dataclass(frozen=True)
class ServiceCommands(Generic[S]):
    """What a service plugs into the shared command line."""

    name: str
    settings_type: type[S]
    wire: Callable[[S], ProcessRuntime]
    migrate: Callable[[S], None] | None = None
    extra: dict[str, Callable[[S], Coroutine[Any, Any, int]]] = field(default_factory=dict)


async def _serve(commands: ServiceCommands[S], settings: S) -> int:
    runtime = commands.wire(settings)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.grpc_host)
    try:
        await serve_until_signal(
            runtime.grpc,
            settings.grpc_host,
            settings.grpc_port,
            settings.shutdown_grace_seconds,
            health_port=settings.health_port or None,
        )
    finally:
        await runtime.close()
    return 0


def run_cli(commands: ServiceCommands[S], argv: list[str] | None = None) -> int:
    """Parse argv, load and validate settings (errors name the variable, never its value), run."""
    parser = argparse.ArgumentParser(prog=f"python -m helios.{commands.name}")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve", "migrate", *commands.extra]
    )
    args = parser.parse_args(argv)
    settings = load_settings(commands.settings_type)
    configure_logging(commands.name, settings.log_level)
    tracing = configure_tracing(commands.name, settings.otel_exporter)
    try:
        if args.command == "migrate":
            if commands.migrate is not None:
                commands.migrate(settings)
            return 0
        if args.command == "serve":
            return asyncio.run(_serve(commands, settings))
        return asyncio.run(commands.extra[args.command](settings))
    finally:
        tracing.shutdown()  # exports the spans still queued
