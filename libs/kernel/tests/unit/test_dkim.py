"""DKIM (E3): DkimSigner's signatures verify with dkimpy for rsa-sha256 and ed25519-sha256, fail
after any change a signature must cover, survive what relaxed canonicalization forgives; the TXT
value and the refusals of bad domains, selectors, messages and keys."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import dkim
import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from helios.kernel.dkim import (
    DkimSigner,
    dkim_dns_name,
    dkim_txt_record,
    keyvault_signer,
    relaxed_body,
    relaxed_header,
)
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from helios.proto.keyvault.v1 import keyvault_pb2 as kv

pytestmark = pytest.mark.unit

DOMAIN, SELECTOR = "mail.example.org", "helios-2026"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
MESSAGE = (
    b"From: Alice Example <alice@mail.example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: Quarterly report\r\n"
    b"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"
    b"Message-ID: <report-1@mail.example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b"\r\n"
    b"the numbers are in: 42.\r\n"
)
ALGORITHMS = ["rsa-sha256", "ed25519-sha256"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class LocalKey:
    """Test double of keyvault's Sign (no keyvault runs in unit tests): a private key generated
    in memory that signs like keyvault does (RSA PKCS#1 v1.5 over SHA-256 of the data, Ed25519
    over the data), with its public JWK as GetPublicKey returns it. Records what it signed."""

    def __init__(self, algorithm: str) -> None:
        self.private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        if algorithm == "rsa-sha256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
        self.signed: list[bytes] = []

    async def sign(self, data: bytes) -> bytes:
        self.signed.append(data)
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private.sign(data)

    def jwk(self) -> dict[str, str]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            return {
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": "k:1",
                "n": _b64url(numbers.n.to_bytes(256, "big")),
                "e": _b64url(numbers.e.to_bytes(3, "big")),
            }
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "x": _b64url(raw)}


_KEYS: dict[str, LocalKey] = {}


@pytest.fixture(params=ALGORITHMS)
def key(request: pytest.FixtureRequest) -> LocalKey:
    """One local key per algorithm, reused across tests (RSA generation is slow)."""
    algorithm: str = request.param
    if algorithm not in _KEYS:
        _KEYS[algorithm] = LocalKey(algorithm)
    local = _KEYS[algorithm]
    local.signed.clear()
    return local


def _algorithm(key: LocalKey) -> Any:
    return "rsa-sha256" if isinstance(key.private, rsa.RSAPrivateKey) else "ed25519-sha256"


def _signer(key: LocalKey, **options: Any) -> DkimSigner:
    return DkimSigner(key.sign, _algorithm(key), DOMAIN, SELECTOR, clock=lambda: NOW, **options)


class Dns:
    """dkimpy's dnsfunc answering only our record's name, with the TXT value to publish."""

    def __init__(self, txt: str) -> None:
        self.txt = txt
        self.asked: list[bytes] = []

    def __call__(self, name: bytes, timeout: int = 5) -> bytes:
        self.asked.append(name)
        if name != f"{dkim_dns_name(SELECTOR, DOMAIN)}.".encode():
            return b""
        return self.txt.encode()


def _verifies(message: bytes, key: LocalKey) -> bool:
    result = dkim.verify(message, dnsfunc=Dns(dkim_txt_record(key.jwk())))
    assert isinstance(result, bool)
    return result


def _tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    match = re.match(r"DKIM-Signature:(.*?)\r\n(?![ \t])", header + "\r\n", re.DOTALL)
    assert match is not None
    value = re.sub(r"\s+", "", match.group(1))
    return dict(tag.split("=", 1) for tag in value.split(";"))


# --- signatures dkimpy accepts and rejects -----------------------------------------------------


async def test_e3_signed_message_verifies_with_dkimpy_against_the_txt_value(key: LocalKey) -> None:
    """E3: a message signed with either algorithm verifies with dkimpy, which looks up exactly
    `<selector>._domainkey.<domain>` and finds the TXT value to publish; the message is kept
    byte for byte below the new header; t= comes from the injected clock."""
    signed = await _signer(key).sign_message(MESSAGE)
    assert signed.startswith(b"DKIM-Signature: v=1; ")
    assert signed.endswith(MESSAGE)
    dns = Dns(dkim_txt_record(key.jwk()))
    assert dkim.verify(signed, dnsfunc=dns) is True
    assert dns.asked == [b"helios-2026._domainkey.mail.example.org."]
    tags = _tags(signed)
    assert tags["a"] == _algorithm(key)
    assert tags["c"] == "relaxed/relaxed"
    assert (tags["d"], tags["s"]) == (DOMAIN, SELECTOR)
    assert tags["t"] == str(int(NOW.timestamp()))
    assert "l" not in tags
    assert tags["h"].split(":")[:2] == ["from", "from"]  # From signed and oversigned


async def test_e3_one_changed_body_byte_fails_verification(key: LocalKey) -> None:
    """E3: changing one byte of the body (42 -> 43) makes dkimpy refuse the signature."""
    signed = await _signer(key).sign_message(MESSAGE)
    assert _verifies(signed, key)
    tampered = signed.replace(b"are in: 42.", b"are in: 43.")
    assert tampered != signed
    assert not _verifies(tampered, key)


async def test_e3_appended_body_text_fails_verification(key: LocalKey) -> None:
    """E3: no l= tag, so text appended to the body breaks the signature."""
    signed = await _signer(key).sign_message(MESSAGE)
    assert not _verifies(signed + b"P.S. wire the money elsewhere\r\n", key)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: Quarterly report", b"Subject: Quarterly reporT"),
        (b"From: Alice Example", b"From: Mallory Example"),
        (b"Date: Sun, 01 Mar 2026", b"Date: Mon, 02 Mar 2026"),
        (b"Message-ID: <report-1@", b"Message-ID: <report-2@"),
        (b"charset=utf-8", b"charset=latin-1"),
    ],
)
async def test_e3_changed_signed_header_fails_verification(
    key: LocalKey, old: bytes, new: bytes
) -> None:
    """E3: changing a signed header's value makes dkimpy refuse the signature."""
    signed = await _signer(key).sign_message(MESSAGE)
    tampered = signed.replace(old, new)
    assert tampered != signed
    assert not _verifies(tampered, key)


@pytest.mark.parametrize(
    "added",
    [
        b"From: Mallory <mallory@example.com>\r\n",
        b"Subject: Urgent: new bank details\r\n",
        b"Reply-To: mallory@example.com\r\n",
        b"Cc: eve@example.com\r\n",
    ],
)
async def test_e3_added_oversigned_header_fails_verification(key: LocalKey, added: bytes) -> None:
    """E3: oversigning means a second From or Subject, or a new Reply-To or Cc, added in
    transit breaks the signature, while an unsigned header (X-Mailer) may be added."""
    signed = await _signer(key).sign_message(MESSAGE)
    head, body = signed.split(b"\r\n\r\n", 1)
    assert not _verifies(head + b"\r\n" + added.rstrip(b"\r\n") + b"\r\n\r\n" + body, key)
    assert _verifies(head + b"\r\nX-Mailer: relay 1.0\r\n\r\n" + body, key)


async def test_e3_another_key_in_dns_fails_verification(key: LocalKey) -> None:
    """E3: the signature does not verify against another key of the same algorithm."""
    signed = await _signer(key).sign_message(MESSAGE)
    other = LocalKey(_algorithm(key))
    assert not _verifies(signed, other)


async def test_e3_repeated_headers_are_signed_bottom_up() -> None:
    """E3: every instance of a repeated signed header is covered in the order verifiers select
    them (bottom-up): the message verifies, swapping the two instances does not."""
    key = LocalKey("ed25519-sha256")
    message = b"From: a@mail.example.org\r\nX-Tag: one\r\nX-Tag: two\r\n\r\nbody\r\n"
    signer = DkimSigner(
        key.sign, "ed25519-sha256", DOMAIN, SELECTOR, headers=("from", "x-tag"), oversign=()
    )
    signed = await signer.sign_message(message)
    assert _tags(signed)["h"] == "from:x-tag:x-tag"
    assert _verifies(signed, key)
    swapped = signed.replace(b"X-Tag: one\r\nX-Tag: two", b"X-Tag: two\r\nX-Tag: one")
    assert not _verifies(swapped, key)


async def test_e3_sign_receives_header_data_for_rsa_and_its_sha256_for_ed25519(
    key: LocalKey,
) -> None:
    """E3: for rsa-sha256 `sign` gets the canonical header data (signed headers, then the
    DKIM-Signature header ending in an empty b= and no CRLF); for ed25519-sha256 (RFC 8463)
    it gets the SHA-256 digest of that same data."""
    signed = await _signer(key).sign_message(MESSAGE)
    (data,) = key.signed
    header = signed.split(b"\r\nFrom:", 1)[0]
    value = re.sub(rb"b=[A-Za-z0-9+/=\s]*$", b"b=", header.split(b":", 1)[1])
    expected = (
        b"from:Alice Example <alice@mail.example.org>\r\n"
        b"subject:Quarterly report\r\n"
        b"date:Sun, 01 Mar 2026 12:00:00 +0000\r\n"
        b"message-id:<report-1@mail.example.org>\r\n"
        b"to:Bob <bob@example.net>\r\n"
        b"mime-version:1.0\r\n"
        b"content-type:text/plain; charset=utf-8\r\n"
        + relaxed_header(b"DKIM-Signature", value)[:-2]
    )
    assert expected.endswith(b"; b=")
    if _algorithm(key) == "rsa-sha256":
        assert data == expected
    else:
        assert data == hashlib.sha256(expected).digest()


async def test_e3_body_hash_is_sha256_of_the_relaxed_body() -> None:
    """E3: bh= is base64(SHA-256(relaxed body)); an empty body hashes the empty string."""
    key = LocalKey("ed25519-sha256")
    signed = await _signer(key).sign_message(MESSAGE)
    canonical = b"Hello Bob,\r\n\r\nthe numbers are in: 42.\r\n"
    assert _tags(signed)["bh"] == base64.b64encode(hashlib.sha256(canonical).digest()).decode()
    empty = await _signer(key).sign_message(b"From: a@mail.example.org\r\n\r\n")
    assert _tags(empty)["bh"] == base64.b64encode(hashlib.sha256(b"").digest()).decode()
    assert _verifies(empty, key)
    no_body = await _signer(key).sign_message(b"From: a@mail.example.org\r\n")
    assert _verifies(no_body, key)


# --- canonicalization --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n", b""),
        (b"\r\n\r\n  \r\n\t\r\n", b""),
        (b"text", b"text\r\n"),
        (b"text  \t \r\n", b"text\r\n"),
        (b"a \t  b\t\tc\r\n", b"a b c\r\n"),
        (b"  indented\r\n", b" indented\r\n"),
        (b"end\r\n\r\n\r\n", b"end\r\n"),
        (b"one\r\n\r\ntwo\r\n", b"one\r\n\r\ntwo\r\n"),
        (b"last \r\n \r\n\r\n", b"last\r\n"),
    ],
)
def test_e3_relaxed_body_canonicalization(body: bytes, canonical: bytes) -> None:
    """E3: RFC 6376 3.4.4: trailing WSP dropped, WSP runs become one SP, empty lines at the end
    ignored, a final CRLF; an empty body stays empty."""
    assert relaxed_body(body) == canonical


@pytest.mark.parametrize(
    ("name", "value", "canonical"),
    [
        (b"Subject", b" Hello", b"subject:Hello\r\n"),
        (b"SUBJECT", b"\t Hello   there \t", b"subject:Hello there\r\n"),
        (b"Subject", b" Hello\r\n there\r\n\tagain", b"subject:Hello there again\r\n"),
        (b"To", b" a@x,\r\n  b@y", b"to:a@x, b@y\r\n"),
        (b"X-Empty", b"", b"x-empty:\r\n"),
    ],
)
def test_e3_relaxed_header_canonicalization(name: bytes, value: bytes, canonical: bytes) -> None:
    """E3: RFC 6376 3.4.2: lower-case name, unfolded value, WSP runs as one SP, no WSP at the
    value's ends."""
    assert relaxed_header(name, value) == canonical


async def test_e3_what_relaxed_forgives_still_verifies(key: LocalKey) -> None:
    """E3: transit changes relaxed/relaxed tolerates keep the signature valid: trailing
    whitespace on body lines, empty lines appended, wider whitespace runs, a refolded header,
    another header name case and LF line endings; a folded header in the input is signed."""
    message = MESSAGE.replace(
        b"Subject: Quarterly report", b"Subject: Quarterly\r\n   report   for  Q1"
    )
    signed = await _signer(key).sign_message(message)
    assert _verifies(signed, key)
    forgiven = (
        signed.replace(b"Hello Bob,", b"Hello  \t Bob,   ")
        .replace(b"Subject: Quarterly\r\n   report", b"SUBJECT:Quarterly report\r\n\t")
        .replace(b"To: Bob", b"To:    Bob")
    )
    forgiven += b"\r\n  \r\n\r\n"
    assert forgiven != signed
    assert _verifies(forgiven, key)
    assert _verifies(forgiven.replace(b"\r\n", b"\n"), key)
    assert not _verifies(forgiven.replace(b"Hello  \t Bob", b"HelloBob"), key)


async def test_e3_line_endings_are_normalized_and_the_body_gets_its_final_crlf(
    key: LocalKey,
) -> None:
    """E3: an LF-only message is returned with CRLF line endings and a final CRLF added to the
    body, and what is returned is what verifies."""
    lf_message = MESSAGE.replace(b"\r\n", b"\n").rstrip(b"\n")
    signed = await _signer(key).sign_message(lf_message)
    assert b"\n" not in signed.replace(b"\r\n", b"")
    assert signed.endswith(b"the numbers are in: 42.\r\n")
    assert _verifies(signed, key)
    first = await _signer(key).sign_message(MESSAGE)
    assert _tags(signed)["bh"] == _tags(first)["bh"]


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "example.org; h=to",
        "example.org\r\nX-Injected: 1",
        "exa mple.org",
        "-example.org",
        "example-.org",
        "example..org",
        ".example.org",
        "example.org.",
        "exämple.org",
        "example_org",
        "a" * 64 + ".org",
        ".".join(["abcdefghij"] * 24),
    ],
)
def test_e3_bad_domain_or_selector_is_refused(domain: str) -> None:
    """E3: domain and selector are dot-separated labels of letters, digits and hyphens (they go
    into the header and the DNS name): anything else is InvalidArgumentError."""
    key = _KEYS.get("ed25519-sha256") or LocalKey("ed25519-sha256")
    with pytest.raises(InvalidArgumentError) as bad_domain:
        DkimSigner(key.sign, "ed25519-sha256", domain, SELECTOR)
    assert bad_domain.value.field == "domain"
    with pytest.raises(InvalidArgumentError) as bad_selector:
        DkimSigner(key.sign, "ed25519-sha256", DOMAIN, domain)
    assert bad_selector.value.field == "selector"
    with pytest.raises(InvalidArgumentError):
        dkim_dns_name(domain, DOMAIN)


def test_e3_bad_configuration_is_refused() -> None:
    """E3: an unknown algorithm, unsigned From, header names with separators, or oversigned
    headers outside the signed list are InvalidArgumentError."""
    key = LocalKey("ed25519-sha256")
    bad: Any = "rsa-sha1"
    with pytest.raises(InvalidArgumentError):
        DkimSigner(key.sign, bad, DOMAIN, SELECTOR)
    with pytest.raises(InvalidArgumentError, match="From"):
        DkimSigner(key.sign, "ed25519-sha256", DOMAIN, SELECTOR, headers=("to", "subject"))
    for names in (("from", "to:cc"), ("from", "x;y"), ("from", ""), ("from", "x y")):
        with pytest.raises(InvalidArgumentError):
            DkimSigner(key.sign, "ed25519-sha256", DOMAIN, SELECTOR, headers=names)
    with pytest.raises(InvalidArgumentError):
        DkimSigner(
            key.sign, "ed25519-sha256", DOMAIN, SELECTOR, headers=("from",), oversign=("to",)
        )
    assert DkimSigner(key.sign, "ed25519-sha256", "Example.ORG", "s1").domain == "Example.ORG"


@pytest.mark.parametrize(
    "message",
    [
        b"To: bob@example.net\r\nSubject: no sender\r\n\r\nbody\r\n",
        b"From: a@x\r\nFrom: b@y\r\n\r\nbody\r\n",
        b" folded first\r\nFrom: a@x\r\n\r\nbody\r\n",
        b"From: a@x\r\nno colon here\r\n\r\nbody\r\n",
        b"From: a@x\r\nSubject : spaced name\r\n\r\nbody\r\n",
        b"From: a@x\rX-Injected: 1\r\n\r\nbody\r\n",
        b"From a@x Sun Mar  1 12:00:00 2026\r\nFrom: a@x\r\n\r\nbody\r\n",
        b"\r\nFrom: a@x\r\n",
    ],
)
async def test_e3_malformed_message_is_refused(message: bytes) -> None:
    """E3: no From or two, a continuation line first, a line that is not a header field, a bare
    CR in the header section, an mbox From_ line or an empty header section: the message is
    refused with InvalidArgumentError and nothing is signed."""
    key = LocalKey("ed25519-sha256")
    with pytest.raises(InvalidArgumentError) as refused:
        await _signer(key).sign_message(message)
    assert refused.value.field == "message"
    assert key.signed == []


async def test_e3_key_of_another_algorithm_or_naive_clock_is_refused() -> None:
    """E3: a signer whose key is not the configured algorithm (its signature has the wrong
    size) gets FailedPreconditionError instead of a header that cannot verify; a naive clock is
    refused."""
    ed_key, rsa_key = LocalKey("ed25519-sha256"), _KEYS.get("rsa-sha256") or LocalKey("rsa-sha256")
    with pytest.raises(FailedPreconditionError, match="RSA"):
        await DkimSigner(ed_key.sign, "rsa-sha256", DOMAIN, SELECTOR).sign_message(MESSAGE)
    with pytest.raises(FailedPreconditionError, match="Ed25519"):
        await DkimSigner(rsa_key.sign, "ed25519-sha256", DOMAIN, SELECTOR).sign_message(MESSAGE)
    naive = DkimSigner(
        ed_key.sign, "ed25519-sha256", DOMAIN, SELECTOR, clock=lambda: dt.datetime(2026, 3, 1)
    )
    with pytest.raises(InvalidArgumentError):
        await naive.sign_message(MESSAGE)


# --- TXT record ----------------------------------------------------------------------------------


def test_e3_txt_record_publishes_the_public_key(key: LocalKey) -> None:
    """E3: k=rsa carries the DER SubjectPublicKeyInfo, k=ed25519 the raw 32-byte key."""
    txt = dkim_txt_record(key.jwk())
    public = key.private.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert txt == f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    else:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert txt == f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"


def test_e3_txt_record_refuses_keys_dkim_cannot_use() -> None:
    """E3: EC keys, X25519, encryption JWKs, RSA below 1024 bits or with an even exponent,
    non-base64url members and a short Ed25519 key are InvalidArgumentError."""
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    ed = LocalKey("ed25519-sha256").jwk()
    bad: list[dict[str, str]] = [
        {"kty": "EC", "crv": "P-256", "x": _b64url(ec_public.x.to_bytes(32, "big"))},
        {**ed, "crv": "X25519"},
        {**ed, "use": "enc"},
        {**ed, "alg": "RS256"},
        {**ed, "x": ed["x"][:20]},
        {**ed, "x": ed["x"][:-1] + "+"},
        {"kty": "RSA", "n": _b64url(b"\xc1" * 64), "e": "AQAB"},  # 512 bits
        {"kty": "RSA", "n": _b64url(b"\xc1" * 256), "e": "Ag"},
        {"kty": "RSA", "n": "", "e": "AQAB"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {},
    ]
    for jwk in bad:
        with pytest.raises(InvalidArgumentError):
            dkim_txt_record(jwk)


# --- keyvault_signer -----------------------------------------------------------------------------


class FakeKeyvault:
    """Test double of the keyvault stub's Sign (no keyvault runs in unit tests): it signs with
    a local Ed25519 key, records requests and metadata, or fails with a given status."""

    def __init__(self, failure: grpc.StatusCode | None = None) -> None:
        self.key = LocalKey("ed25519-sha256")
        self.failure = failure
        self.calls: list[tuple[kv.SignRequest, Any]] = []

    async def Sign(  # noqa: N802 - gRPC method name
        self, request: kv.SignRequest, *, metadata: Any, **options: Any
    ) -> kv.SignResponse:
        self.calls.append((request, metadata))
        if self.failure is not None:
            raise grpc.aio.AioRpcError(
                self.failure,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="no such key in this org",
            )
        return kv.SignResponse(signature=await self.key.sign(request.message))


async def test_e3_keyvault_signer_sends_the_data_as_the_message() -> None:
    """E3: keyvault_signer calls Sign with org, key, version and the data as `message`, with
    metadata made per call, and the result verifies with dkimpy."""
    fake = FakeKeyvault()
    made: list[int] = []

    def metadata() -> tuple[tuple[str, str], ...]:
        made.append(1)
        return (("x-test", str(len(made))),)

    stub: Any = fake
    sign: Callable[[bytes], Awaitable[bytes]] = keyvault_signer(
        stub, "org-a", "key-1", metadata, key_version=3
    )
    signed = await DkimSigner(sign, "ed25519-sha256", DOMAIN, SELECTOR).sign_message(MESSAGE)
    assert _verifies(signed, fake.key)
    ((request, meta),) = fake.calls
    assert (request.org_id, request.key_id, request.key_version) == ("org-a", "key-1", 3)
    assert request.WhichOneof("input") == "message"
    assert len(request.message) == 32
    assert meta == (("x-test", "1"),)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPreconditionError),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
    ],
)
async def test_e3_keyvault_refusals_become_domain_errors(
    code: grpc.StatusCode, error: type[Exception]
) -> None:
    """E3: keyvault's refusals reach the caller as domain errors; other failures propagate."""
    refusing: Any = FakeKeyvault(code)
    sign = keyvault_signer(refusing, "org-a", "key-1", ())
    with pytest.raises(error):
        await DkimSigner(sign, "ed25519-sha256", DOMAIN, SELECTOR).sign_message(MESSAGE)
    failing: Any = FakeKeyvault(grpc.StatusCode.INTERNAL)
    internal = keyvault_signer(failing, "org-a", "key-1", ())
    with pytest.raises(grpc.aio.AioRpcError):
        await internal(b"data")
