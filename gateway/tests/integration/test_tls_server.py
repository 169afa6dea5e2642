"""The gateway's listener: TLS 1.3 only with a certificate, plain HTTP without (E1, P2)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helios.gateway.tls_server import server
from helios.kernel.testing.servers import free_port
from helios.kernel.tls import CertFiles, ensure_dev_pki

HOST = "127.0.0.1"
OPENSSL = shutil.which("openssl")


async def _whoami(request: Request) -> JSONResponse:
    client = request.client.host if request.client else ""
    return JSONResponse({"client": client, "scheme": request.url.scheme})


APP = Starlette(routes=[Route("/", _whoami)])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """A test CA and a gateway certificate (SAN localhost, 127.0.0.1)."""
    return ensure_dev_pki(tmp_path_factory.mktemp("pki"), ["gateway"])["gateway"]


@asynccontextmanager
async def _running(certfile: Path | None, keyfile: Path | None) -> AsyncIterator[int]:
    """Serve APP in this event loop on a free port; yields the port, stops the server after."""
    port = free_port()
    instance = server(
        APP, HOST, port, certfile=certfile, keyfile=keyfile, log_config=None, access_log=False
    )
    task = asyncio.create_task(instance.serve())
    try:
        async with asyncio.timeout(10):
            while not instance.started:
                assert not task.done(), "the server stopped before it started"
                await asyncio.sleep(0.02)
        yield port
    finally:
        instance.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
async def tls_port(certs: CertFiles) -> AsyncIterator[int]:
    async with _running(certs.cert, certs.key) as port:
        yield port


@pytest.fixture
async def plain_port() -> AsyncIterator[int]:
    async with _running(None, None) as port:
        yield port


async def _s_client(port: int, version_flag: str, ca: Path) -> tuple[int, str]:
    """Run `openssl s_client` against 127.0.0.1:port with stdin at EOF; (exit code, output)."""
    assert OPENSSL is not None, "openssl is needed for the E1 acceptance test"
    process = await asyncio.create_subprocess_exec(
        OPENSSL,
        "s_client",
        "-connect",
        f"{HOST}:{port}",
        "-servername",
        "localhost",
        "-CAfile",
        str(ca),
        "-verify_return_error",
        version_flag,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_e1_openssl_tls12_handshake_is_refused(tls_port: int, certs: CertFiles) -> None:
    code, output = await _s_client(tls_port, "-tls1_2", certs.ca)
    assert code != 0, output
    assert "Cipher is (NONE)" in output, output


async def test_e1_openssl_tls13_handshake_succeeds(tls_port: int, certs: CertFiles) -> None:
    code, output = await _s_client(tls_port, "-tls1_3", certs.ca)
    assert code == 0, output
    assert "TLSv1.3" in output
    assert "Verify return code: 0 (ok)" in output


async def test_e1_https_request_verified_by_the_test_ca(tls_port: int, certs: CertFiles) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    async with httpx.AsyncClient(verify=context) as client:
        response = await client.get(f"https://localhost:{tls_port}/")
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"
    assert response.extensions["network_stream"].get_extra_info("ssl_object").version() == (
        "TLSv1.3"
    )


def _handshake(port: int, context: ssl.SSLContext) -> str:
    """A blocking TLS handshake with 127.0.0.1:port; the negotiated version."""
    with (
        socket.create_connection((HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        return tls.version() or ""


async def test_e1_python_client_capped_at_tls12_is_refused(tls_port: int, certs: CertFiles) -> None:
    # the server closes the connection (asyncio and uvloop send no alert first), so the client
    # sees an unexpected EOF rather than "protocol version"; either way no session is made
    capped = ssl.create_default_context(cafile=str(certs.ca))
    capped.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError, match=r"(?i)EOF|protocol version|unsupported protocol"):
        await asyncio.to_thread(_handshake, tls_port, capped)
    uncapped = ssl.create_default_context(cafile=str(certs.ca))
    assert await asyncio.to_thread(_handshake, tls_port, uncapped) == "TLSv1.3"


async def test_e1_untrusted_client_refuses_the_test_certificate(tls_port: int) -> None:
    async with httpx.AsyncClient(verify=ssl.create_default_context()) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://localhost:{tls_port}/")


async def test_e1_without_a_certificate_serves_plain_http(plain_port: int) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{HOST}:{plain_port}/")
    assert response.status_code == 200
    assert response.json() == {"client": HOST, "scheme": "http"}


async def test_e1_without_a_certificate_there_is_no_tls(plain_port: int, certs: CertFiles) -> None:
    code, output = await _s_client(plain_port, "-tls1_3", certs.ca)
    assert code != 0, output
    assert "Cipher is (NONE)" in output, output


async def test_p2_uvicorn_does_not_rewrite_the_client_from_forwarding_headers(
    plain_port: int,
) -> None:
    # uvicorn alone would believe X-Forwarded-For from 127.0.0.1; TrustedProxies decides instead
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://{HOST}:{plain_port}/",
            headers={"X-Forwarded-For": "1.1.1.1", "X-Forwarded-Proto": "https"},
        )
    assert response.json() == {"client": HOST, "scheme": "http"}


def test_e1_key_without_certificate_is_refused(certs: CertFiles) -> None:
    with pytest.raises(ValueError, match="without its certificate"):
        server(APP, HOST, 0, certfile=None, keyfile=certs.key)


@pytest.mark.parametrize(
    "option", [{"ssl_version": ssl.PROTOCOL_TLS_SERVER}, {"proxy_headers": True}]
)
def test_e1_reserved_uvicorn_options_are_refused(option: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="set by the gateway"):
        server(APP, HOST, 0, certfile=None, keyfile=None, **option)


def test_e1_mismatched_certificate_and_key_fail_before_listening(
    certs: CertFiles, tmp_path: Path
) -> None:
    other = ensure_dev_pki(tmp_path, ["other"])["other"]
    with pytest.raises(ssl.SSLError):
        server(APP, HOST, 0, certfile=certs.cert, keyfile=other.key)


def test_e1_missing_certificate_fails_before_listening(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        server(APP, HOST, 0, certfile=tmp_path / "none.pem", keyfile=tmp_path / "none.key")


# Serves APP until SIGTERM, then writes a marker: the clean-up after a graceful stop must run.
_STOPPING_PROCESS = """
import sys
from pathlib import Path
from starlette.applications import Starlette
from helios.gateway.tls_server import serve

try:
    serve(Starlette(), "127.0.0.1", int(sys.argv[1]), certfile=None, keyfile=None, log_config=None)
finally:
    Path(sys.argv[2]).write_text("cleaned up")
"""


async def test_p5_sigterm_stops_gracefully_and_lets_the_clean_up_run(tmp_path: Path) -> None:
    """SIGTERM (a pod stopping): the server stops, the process's own clean-up (the flush of its
    queued spans) runs, and it exits 0 instead of dying by the signal."""
    port, marker = free_port(), tmp_path / "marker"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _STOPPING_PROCESS, str(port), str(marker)
    )
    async with asyncio.timeout(20):
        while True:
            try:
                async with httpx.AsyncClient() as client:
                    await client.get(f"http://{HOST}:{port}/")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), timeout=20) == 0
    assert marker.read_text() == "cleaned up"
