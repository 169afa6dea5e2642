"""The plaintext health-only listener the kubelet's grpc probe reaches despite mTLS, and the
container health probe that asks it (P4)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from helios.kernel.clients import secure_channel
from helios.kernel.health_probe import main as probe_main
from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.testing.servers import is_listening
from helios.kernel.tls import CertFiles
from helios.proto.authz.v1 import authz_pb2, authz_pb2_grpc

AUTHZ = authz_pb2.DESCRIPTOR.services_by_name["AuthzService"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Business(authz_pb2_grpc.AuthzServiceServicer):
    """Any business RPC will do (the kernel may not depend on a service); while `hold` is set a
    call waits for `release`, so a stop has a call to drain."""

    def __init__(self) -> None:
        self.hold = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def RegisterPermissions(  # noqa: N802 - gRPC method name
        self, request: authz_pb2.RegisterPermissionsRequest, context: Any
    ) -> authz_pb2.RegisterPermissionsResponse:
        if self.hold:
            self.entered.set()
            await self.release.wait()
        return authz_pb2.RegisterPermissionsResponse()


@dataclass
class Running:
    service: GrpcService
    business: Business


def _service(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> tuple[GrpcService, Business]:
    business = Business()
    service = GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )
    service.add_service(
        AUTHZ, lambda s: authz_pb2_grpc.add_AuthzServiceServicer_to_server(business, s)
    )
    return service, business


@pytest.fixture
async def running(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> AsyncIterator[Running]:
    service, business = _service(pki, principal_keys)
    await service.start("127.0.0.1", 0, health_port=0)
    try:
        yield Running(service, business)
    finally:
        business.release.set()
        await service.stop(0)


def _plaintext(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}")


async def _check(port: int, service: str) -> int:
    async with _plaintext(port) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return reply.status


def _listening_ports() -> set[int]:
    """TCP ports this process listens on (Linux /proc): its socket inodes in LISTEN state."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def _probe(*args: str) -> tuple[int, str]:
    """Run the probe as the Dockerfile's HEALTHCHECK does: its own process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "helios.kernel.health_probe",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode().strip()


async def test_p4_health_listener_answers_serving_without_tls(running: Running) -> None:
    """P4: the kubelet's grpc probe (plaintext, no client certificate) gets SERVING for the
    whole server and for a registered service; an unknown service is NOT_FOUND."""
    port = running.service.health_port
    assert port not in (0, running.service.port)
    assert await _check(port, "") == SERVING
    assert await _check(port, AUTHZ) == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _check(port, "helios.proto.nothing.v1.Nothing")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_p4_health_listener_serves_no_business_method(
    running: Running, pki: dict[str, CertFiles]
) -> None:
    """P4: a business RPC answers over mTLS on the main port, and is UNIMPLEMENTED on the
    plaintext health port."""
    async with secure_channel(f"localhost:{running.service.port}", pki["gateway"]) as channel:
        reply = await authz_pb2_grpc.AuthzServiceStub(channel).RegisterPermissions(
            authz_pb2.RegisterPermissionsRequest(), timeout=10
        )
    assert isinstance(reply, authz_pb2.RegisterPermissionsResponse)
    async with _plaintext(running.service.health_port) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await authz_pb2_grpc.AuthzServiceStub(channel).RegisterPermissions(
                authz_pb2.RegisterPermissionsRequest(), timeout=10
            )
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def _list_services(channel: grpc.aio.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in stub.ServerReflectionInfo(iter([request]), timeout=10):
        return [entry.name for entry in reply.list_services_response.service]
    return []


async def test_p4_health_listener_has_no_reflection(
    running: Running, pki: dict[str, CertFiles]
) -> None:
    """P4: reflection lists the services on the mTLS port only; the health port refuses it."""
    async with secure_channel(f"localhost:{running.service.port}", pki["gateway"]) as channel:
        assert AUTHZ in await _list_services(channel)
    async with _plaintext(running.service.health_port) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _list_services(channel)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_p4_health_listener_reports_not_serving_while_draining_then_closes(
    running: Running, pki: dict[str, CertFiles]
) -> None:
    """P4: once stop begins, the health port reports NOT_SERVING while in-flight calls drain
    (the pod leaves the Service's endpoints), and is closed after the server stopped."""
    service, business = running.service, running.business
    health_port = service.health_port
    business.hold = True
    async with secure_channel(f"localhost:{service.port}", pki["gateway"]) as channel:
        in_flight = asyncio.ensure_future(
            authz_pb2_grpc.AuthzServiceStub(channel).RegisterPermissions(
                authz_pb2.RegisterPermissionsRequest(), timeout=30
            )
        )
        await business.entered.wait()
        async with _plaintext(health_port) as health_channel:
            watch = health_pb2_grpc.HealthStub(health_channel).Watch(
                health_pb2.HealthCheckRequest(service="")
            )
            first = await watch.read()
            assert isinstance(first, health_pb2.HealthCheckResponse)
            assert first.status == SERVING
            stopping = asyncio.create_task(service.stop(30))
            second = await watch.read()
            assert isinstance(second, health_pb2.HealthCheckResponse)
            assert second.status == NOT_SERVING
            assert await _check(health_port, AUTHZ) == NOT_SERVING
            assert await _probe("--port", str(health_port)) == (
                1,
                f"grpc health 127.0.0.1:{health_port} service '': NOT_SERVING",
            )
            watch.cancel()
        business.release.set()
        assert isinstance(await in_flight, authz_pb2.RegisterPermissionsResponse)
        await stopping
    assert not is_listening("127.0.0.1", health_port)
    code, line = await _probe("--port", str(health_port))
    assert (code, line) == (1, f"grpc health 127.0.0.1:{health_port} service '': UNAVAILABLE")


async def test_p4_health_listener_binds_one_extra_port_and_none_when_off(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> None:
    """P4: with a health port the process listens on exactly the main and the health port; with
    none (HELIOS_HEALTH_PORT=0, the default) on the main port only."""
    for health_port in (0, None):
        service, _ = _service(pki, principal_keys)
        before = _listening_ports()
        await service.start("127.0.0.1", 0, health_port=health_port)
        try:
            opened = _listening_ports() - before
        finally:
            await service.stop(0)
        if health_port is None:
            assert (opened, service.health_port) == ({service.port}, 0)
        else:
            assert opened == {service.port, service.health_port}


async def test_p4_health_probe_exits_zero_on_serving(running: Running) -> None:
    """P4: the image's HEALTHCHECK command succeeds against a serving health listener, for the
    whole server and for a named service."""
    port = running.service.health_port
    assert await _probe("--port", str(port)) == (
        0,
        f"grpc health 127.0.0.1:{port} service '': SERVING",
    )
    assert await _probe("--port", str(port), "--service", AUTHZ) == (
        0,
        f"grpc health 127.0.0.1:{port} service '{AUTHZ}': SERVING",
    )


class _Healthz(BaseHTTPRequestHandler):
    """/healthz answers 200, anything else 503 (a stand-in for the gateway's routes)."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts the outcome."""


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_p4_health_probe_http_follows_the_status(
    http_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """P4: `--http` is healthy on 2xx only (the gateway image's HEALTHCHECK on /healthz)."""
    base = f"http://127.0.0.1:{http_port}"
    assert probe_main(["--http", f"{base}/healthz"]) == 0
    assert probe_main(["--http", f"{base}/readyz"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == (f"http {base}/healthz: 200\n", f"http {base}/readyz: 503\n")
