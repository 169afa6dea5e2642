"""`python -m helios.gateway`: validate settings, then serve the app with uvicorn."""

from __future__ import annotations

import argparse
import functools
import sys
from importlib.resources import files
from pathlib import Path

from helios.gateway.app import create_app
from helios.gateway.settings import GatewaySettings
from helios.gateway.store import tables
from helios.gateway.tls_server import serve
from helios.gateway.upstream import Upstream
from helios.kernel.jsonlog import configure_logging
from helios.kernel.migrations import migrate
from helios.kernel.runtime import cert_files
from helios.kernel.settings import load_settings
from helios.kernel.telemetry import configure_tracing


def _migrate(settings: GatewaySettings) -> int:
    if settings.database_url is None:
        print("HELIOS_DATABASE_URL is not set: nothing to migrate", file=sys.stderr)
        return 2
    location = Path(str(files("helios.gateway.store") / "migrations"))
    migrate(settings.database_url.get_secret_value(), tables.SCHEMA, location, tables.metadata)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`serve` (default): run until SIGINT/SIGTERM; `migrate`: upgrade the gateway schema."""
    parser = argparse.ArgumentParser(prog="python -m helios.gateway")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    settings = load_settings(GatewaySettings)
    if args.command == "migrate":
        return _migrate(settings)
    configure_logging("gateway", settings.log_level)
    tracing = configure_tracing("gateway", settings.otel_exporter)
    connect = functools.partial(
        Upstream.connect,
        cert_files(settings),
        settings.targets(),
        settings.upstream_timeout_seconds,
    )
    app = create_app(settings, connect)
    metrics = app.state.metrics_app
    try:
        serve(
            app,
            settings.http_host,
            settings.http_port,
            side=(metrics, settings.metrics_port) if metrics is not None else None,
            certfile=settings.https_cert_file,
            keyfile=settings.https_key_file,
            log_config=None,
            access_log=False,
            server_header=False,
            h11_max_incomplete_event_size=16 * 1024,
            ws_max_size=4096,
        )
    finally:
        tracing.shutdown()  # exports the spans still queued
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
