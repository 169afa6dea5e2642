"""Mutual TLS: a development CA and per-service certificates, gRPC credentials, caller identity."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "SPIFFE_PREFIX",
    "CertFiles",
    "caller_from_pem",
    "channel_credentials",
    "client_ssl_context",
    "ensure_dev_pki",
    "issue_certificate",
    "server_credentials",
    "write_secret",
]

SPIFFE_PREFIX = "spiffe://helios/"
_CA_DAYS = 365
_LEAF_DAYS = 90


@dataclass(frozen=True, slots=True)
class CertFiles:
    """Where one identity's certificate, key and trusted CA live."""

    ca: Path
    cert: Path
    key: Path


def write_secret(path: Path, data: bytes) -> None:
    """Write key material readable by its owner only (0600), replacing any old file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _create_ca(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Helios development CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_secret(directory / "ca.key", _key_pem(key))
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def issue_certificate(directory: Path, ca_dir: Path, identity: str) -> CertFiles:
    """Issue a leaf certificate for `identity` (SAN spiffe://helios/<identity>, localhost) signed
    by the CA in `ca_dir`; writes `<identity>.pem` and `<identity>.key` (0600) into `directory`."""
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(SPIFFE_PREFIX + identity),
            x509.DNSName(identity),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = CertFiles(
        ca=ca_dir / "ca.pem", cert=directory / f"{identity}.pem", key=directory / f"{identity}.key"
    )
    write_secret(files.key, _key_pem(key))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def ensure_dev_pki(directory: Path, identities: list[str]) -> dict[str, CertFiles]:
    """Create a development CA on first use and a certificate for each identity missing one."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "ca.pem").exists():
        _create_ca(directory)
    out: dict[str, CertFiles] = {}
    for identity in identities:
        cert = directory / f"{identity}.pem"
        if cert.exists():
            out[identity] = CertFiles(
                ca=directory / "ca.pem", cert=cert, key=directory / f"{identity}.key"
            )
        else:
            out[identity] = issue_certificate(directory, directory, identity)
    return out


def server_credentials(files: CertFiles) -> grpc.ServerCredentials:
    """Server side of mutual TLS: a client certificate signed by our CA is required."""
    return grpc.ssl_server_credentials(
        [(files.key.read_bytes(), files.cert.read_bytes())],
        root_certificates=files.ca.read_bytes(),
        require_client_auth=True,
    )


def channel_credentials(files: CertFiles) -> grpc.ChannelCredentials:
    """Client side of mutual TLS: trust our CA and present our own certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=files.ca.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )


def client_ssl_context(files: CertFiles) -> ssl.SSLContext:
    """Client side of mutual TLS for other protocols (NATS): TLS 1.3 only, trust our CA alone,
    check the server's name, present our own certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


def caller_from_pem(pem: bytes) -> str:
    """The Helios identity in a peer certificate's `spiffe://helios/<name>` SAN, or '' if none."""
    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(SPIFFE_PREFIX):
            return uri.removeprefix(SPIFFE_PREFIX)
    return ""
