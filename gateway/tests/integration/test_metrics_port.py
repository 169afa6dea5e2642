"""/metrics off the public port (P2, P5): with HELIOS_METRICS_PORT the gateway's public app has
no /metrics and a second, plain-HTTP listener serves it, started and stopped with the first."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import httpx

from helios.gateway.app import create_app
from helios.gateway.settings import GatewaySettings
from helios.kernel.testing.servers import free_port

HOST = "127.0.0.1"


def _no_upstream() -> Any:
    raise AssertionError("not started")


def _paths(app: Any) -> set[str]:
    return {getattr(route, "path", "") for route in app.routes}


def test_p2_with_a_metrics_port_the_public_app_has_no_metrics(
    gateway_settings: GatewaySettings,
) -> None:
    """Without the setting /metrics is on the public app (local runs); with it, only on the
    separate metrics app."""
    default = create_app(gateway_settings, _no_upstream)
    assert "/metrics" in _paths(default)
    assert default.state.metrics_app is None
    split = create_app(gateway_settings.model_copy(update={"metrics_port": 9464}), _no_upstream)
    assert "/metrics" not in _paths(split)
    assert _paths(split.state.metrics_app) == {"/metrics"}


# The gateway's serve() with a side app, as __main__ runs it with HELIOS_METRICS_PORT.
_PROCESS = """
import sys
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from helios.gateway.tls_server import serve

def answer(text):
    async def endpoint(_):
        return PlainTextResponse(text)
    return endpoint

public = Starlette(routes=[Route("/", answer("public"))])
metrics = Starlette(routes=[Route("/metrics", answer("helios_requests_total 1"))])
serve(public, "127.0.0.1", int(sys.argv[1]), certfile=None, keyfile=None,
      side=(metrics, int(sys.argv[2])), log_config=None)
"""


async def _get(url: str) -> httpx.Response:
    async with asyncio.timeout(20):
        while True:
            try:
                async with httpx.AsyncClient() as client:
                    return await client.get(url)
            except httpx.TransportError:
                await asyncio.sleep(0.05)


async def test_p2_the_metrics_listener_serves_beside_the_public_one_and_stops_with_it(
    tmp_path: Path,
) -> None:
    public_port, metrics_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROCESS, str(public_port), str(metrics_port), cwd=tmp_path
    )
    try:
        assert (await _get(f"http://{HOST}:{public_port}/")).text == "public"
        metrics = await _get(f"http://{HOST}:{metrics_port}/metrics")
        assert metrics.text == "helios_requests_total 1"
        assert (await _get(f"http://{HOST}:{metrics_port}/")).status_code == 404
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
