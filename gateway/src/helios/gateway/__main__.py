"""`python -m helios.gateway`: validate settings, then serve the app with uvicorn."""

from __future__ import annotations

import functools

from helios.gateway.app import create_app
from helios.gateway.settings import GatewaySettings
from helios.gateway.tls_server import serve
from helios.gateway.upstream import Upstream
from helios.kernel.jsonlog import configure_logging
from helios.kernel.runtime import cert_files
from helios.kernel.settings import load_settings
from helios.kernel.telemetry import configure_tracing


def main() -> int:
    """Run until SIGINT/SIGTERM (uvicorn stops gracefully)."""
    settings = load_settings(GatewaySettings)
    configure_logging("gateway", settings.log_level)
    configure_tracing("gateway", settings.otel_exporter)
    connect = functools.partial(
        Upstream.connect,
        cert_files(settings),
        settings.targets(),
        settings.upstream_timeout_seconds,
    )
    serve(
        create_app(settings, connect),
        settings.http_host,
        settings.http_port,
        certfile=settings.https_cert_file,
        keyfile=settings.https_key_file,
        log_config=None,
        access_log=False,
        server_header=False,
        h11_max_incomplete_event_size=16 * 1024,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
