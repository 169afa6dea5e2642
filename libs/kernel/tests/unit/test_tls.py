"""Development PKI and caller identity for service-to-service mutual TLS (E1)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helios.kernel.tls import (
    SPIFFE_PREFIX,
    CertFiles,
    caller_from_pem,
    channel_credentials,
    ensure_dev_pki,
    server_credentials,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    return ensure_dev_pki(tmp_path_factory.mktemp("pki"), ["identity", "gateway"])


def _self_signed(san: x509.SubjectAlternativeName | None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "identity")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_e1_caller_from_pem_extracts_spiffe_identity(pki: dict[str, CertFiles]) -> None:
    assert caller_from_pem(pki["identity"].cert.read_bytes()) == "identity"
    assert caller_from_pem(pki["gateway"].cert.read_bytes()) == "gateway"


def test_e1_leaf_carries_spiffe_uri_and_both_key_usages(pki: dict[str, CertFiles]) -> None:
    cert = x509.load_pem_x509_certificate(pki["identity"].cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://helios/identity"]
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_e1_leaf_is_signed_by_the_dev_ca(pki: dict[str, CertFiles]) -> None:
    ca = x509.load_pem_x509_certificate(pki["identity"].ca.read_bytes())
    leaf = x509.load_pem_x509_certificate(pki["identity"].cert.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_e1_private_keys_are_written_0600(pki: dict[str, CertFiles]) -> None:
    ca_key = pki["identity"].ca.with_name("ca.key")
    for path in (pki["identity"].key, pki["gateway"].key, ca_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_e1_ensure_dev_pki_keeps_existing_certificates(tmp_path: Path) -> None:
    first = ensure_dev_pki(tmp_path, ["audit"])
    cert_before = first["audit"].cert.read_bytes()
    ca_before = first["audit"].ca.read_bytes()
    second = ensure_dev_pki(tmp_path, ["audit", "authz"])
    assert second["audit"].cert.read_bytes() == cert_before
    assert second["audit"].ca.read_bytes() == ca_before
    assert caller_from_pem(second["authz"].cert.read_bytes()) == "authz"


def test_e1_certificate_without_san_has_no_caller() -> None:
    assert caller_from_pem(_self_signed(None)) == ""


def test_e1_foreign_spiffe_uri_is_not_a_helios_caller() -> None:
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier("spiffe://other-trust-domain/identity"),
            x509.DNSName("identity"),
        ]
    )
    assert caller_from_pem(_self_signed(san)) == ""
    assert SPIFFE_PREFIX == "spiffe://helios/"


def test_e1_credentials_build_from_cert_files(pki: dict[str, CertFiles]) -> None:
    assert isinstance(server_credentials(pki["identity"]), grpc.ServerCredentials)
    assert isinstance(channel_credentials(pki["gateway"]), grpc.ChannelCredentials)
