"""NATS over mutual TLS (E1): with a `tls://` URL every process talks to NATS with TLS 1.3, trusting
only the Helios CA and presenting its own certificate; a real nats-server requiring client
certificates refuses anyone else."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from helios.kernel.bus import AUDIT_STREAM, Bus
from helios.kernel.testing.servers import ThrowawayNats
from helios.kernel.tls import CertFiles, client_ssl_context, ensure_dev_pki

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_nats(tmp_path: Path) -> Iterator[tuple[ThrowawayNats, dict[str, CertFiles]]]:
    """A nats-server with JetStream on TLS that requires a client certificate of a fresh CA."""
    pki = ensure_dev_pki(tmp_path / "pki", ["nats", "identity"])
    server = ThrowawayNats(
        (
            "--tls",
            "--tlscert",
            str(pki["nats"].cert),
            "--tlskey",
            str(pki["nats"].key),
            "--tlscacert",
            str(pki["nats"].ca),
            "--tlsverify",
        )
    ).start()
    try:
        yield server, pki
    finally:
        server.destroy()


async def test_e1_a_process_reaches_tls_nats_with_its_own_certificate(
    tls_nats: tuple[ThrowawayNats, dict[str, CertFiles]],
) -> None:
    server, pki = tls_nats
    bus = Bus(
        f"tls://127.0.0.1:{server.port}", "kernel-test", tls=client_ssl_context(pki["identity"])
    )
    try:
        js = await bus.jetstream()
        ack = await js.publish("audit.kerneltest.tls", b"event")
        assert ack.stream == AUDIT_STREAM
        client = bus.client
        assert client is not None
        assert client.connected_url is not None
        assert client.connected_url.scheme == "tls"
    finally:
        await bus.close()


async def test_e1_tls_nats_refuses_a_client_without_a_certificate_of_the_helios_ca(
    tls_nats: tuple[ThrowawayNats, dict[str, CertFiles]], tmp_path: Path
) -> None:
    """No client certificate, or one of another CA: the handshake fails (no retry loop)."""
    server, pki = tls_nats
    anonymous = ssl.create_default_context(cafile=str(pki["identity"].ca))
    other = client_ssl_context(ensure_dev_pki(tmp_path / "other-pki", ["identity"])["identity"])
    for context in (anonymous, other):
        with pytest.raises(Exception):  # noqa: B017, PT011 - any TLS or connection error
            await nats.connect(
                f"tls://127.0.0.1:{server.port}",
                tls=context,
                connect_timeout=2,
                allow_reconnect=False,
            )


def test_e1_the_nats_client_context_is_tls_13_and_checks_the_server(tmp_path: Path) -> None:
    """TLS 1.3 at least, the server's certificate and name checked."""
    context = client_ssl_context(ensure_dev_pki(tmp_path, ["identity"])["identity"])
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
