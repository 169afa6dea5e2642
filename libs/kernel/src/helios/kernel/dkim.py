"""DKIM signing of outbound mail (E3) with a key that never leaves keyvault.

`DkimSigner` builds the RFC 6376 ``DKIM-Signature`` header itself (relaxed/relaxed
canonicalization, SHA-256 body hash, ``t=`` timestamp) and hands only the data to sign to a
callable, normally `keyvault_signer`, which calls keyvault's Sign RPC with the org's DKIM key:

- ``rsa-sha256`` (RFC 6376): the callable gets the canonicalized header data and signs it with
  RSASSA-PKCS1-v1_5 / SHA-256 (keyvault's KEY_ALGORITHM_RSA_2048_PKCS1_SHA256 hashes it).
- ``ed25519-sha256`` (RFC 8463): Ed25519 signs the SHA-256 digest of that header data, so the
  callable gets the 32-byte digest (keyvault's KEY_ALGORITHM_ED25519 signs it as its message).

`dkim_txt_record` turns the key's public JWK (keyvault GetPublicKey) into the TXT value to publish
at ``<selector>._domainkey.<domain>`` (`dkim_dns_name`). An RSA-2048 value is longer than 255
bytes: a zone file splits it into several quoted character-strings, which resolvers concatenate.

What is signed: every instance of the configured header fields present in the message (bottom-up,
as verifiers select them), plus one extra, empty instance of each "oversigned" field so that no
such field can be added in transit without breaking the signature. ``From`` must be signed and
must occur exactly once. No ``l=`` body length is ever used, so nothing can be appended to the body.

Message handling: line endings are normalized to CRLF, and a non-empty body that does not end
with CRLF gets one (SMTP transmits it so anyway), so the message returned is exactly the message
signed. Header fields must be ``name:value`` with a printable-ASCII name; a bare CR, an mbox
``From `` line or a header section with a continuation line first is refused with
`InvalidArgumentError`, as are a domain or selector that is not letters, digits, hyphens and
dots (they go into a header and a DNS name: no injection).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from helios.kernel.clients import call_metadata
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from helios.proto.keyvault.v1 import keyvault_pb2

if TYPE_CHECKING:
    from helios.proto.keyvault.v1.keyvault_pb2_grpc import KeyvaultServiceAsyncStub

__all__ = [
    "DEFAULT_HEADERS",
    "DEFAULT_OVERSIGN",
    "DkimAlgorithm",
    "DkimSigner",
    "Metadata",
    "SignFunction",
    "dkim_dns_name",
    "dkim_txt_record",
    "keyvault_signer",
    "relaxed_body",
    "relaxed_header",
]

DkimAlgorithm = Literal["rsa-sha256", "ed25519-sha256"]
SignFunction = Callable[[bytes], Awaitable[bytes]]
Metadata = Sequence[tuple[str, str | bytes]]

# RFC 6376 section 5.4.1's recommended fields.
DEFAULT_HEADERS: tuple[str, ...] = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
    "in-reply-to",
    "references",
)
# Fields that must not be added after signing (a second From, a new Subject, ...).
DEFAULT_OVERSIGN: tuple[str, ...] = ("from", "sender", "reply-to", "subject", "date", "to", "cc")

MIN_RSA_BITS = 1024  # RFC 8301: verifiers refuse shorter keys
ED25519_SIGNATURE_SIZE = 64
ED25519_KEY_SIZE = 32
_MAX_LINE = 78
_B64_CHUNK = 70

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HEADER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_FIELD = re.compile(rb"([!-9;-~]+):(.*)", re.DOTALL)
_WSP_RUN = re.compile(rb"[ \t]+")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- canonicalization (RFC 6376 section 3.4) ---------------------------------------------------


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """Relaxed header canonicalization: lower-case name, unfolded value, runs of WSP as one SP,
    no WSP around the value; ends with CRLF."""
    unfolded = value.replace(b"\r\n", b"")
    return name.lower() + b":" + _WSP_RUN.sub(b" ", unfolded).strip(b" ") + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """Relaxed body canonicalization of a CRLF body: no WSP at line ends, runs of WSP as one SP,
    no empty lines at the end, a final CRLF; an empty body (or only empty lines) is empty."""
    lines = [_WSP_RUN.sub(b" ", line).rstrip(b" ") for line in body.split(b"\r\n")]
    while lines and not lines[-1]:
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


# --- message parsing ---------------------------------------------------------------------------


def _split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes, bytes]:
    """(header fields as (name, raw value), the CRLF header section, the CRLF body suffix
    including the blank line) of a message; InvalidArgumentError when it is malformed."""
    normalized = _BARE_LF.sub(b"\r\n", message)
    end = normalized.find(b"\r\n\r\n")
    if normalized.startswith(b"\r\n"):
        section, rest = b"", normalized
    elif end < 0:
        section = normalized if normalized.endswith(b"\r\n") else normalized + b"\r\n"
        rest = b""
    else:
        section, rest = normalized[: end + 2], normalized[end + 2 :]
    if rest:
        body = rest[2:]
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
        rest = b"\r\n" + body
    if b"\r" in section.replace(b"\r\n", b""):
        raise InvalidArgumentError("the header section holds a bare CR", field="message")
    fields: list[tuple[bytes, bytes]] = []
    for line in section.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise InvalidArgumentError(
                    "the message starts with a continuation line", field="message"
                )
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        match = _FIELD.fullmatch(line)
        if match is None:
            raise InvalidArgumentError(
                "a header line is not 'name: value' with a printable ASCII name", field="message"
            )
        fields.append((match.group(1), match.group(2)))
    return fields, section, rest


# --- the signer --------------------------------------------------------------------------------


def _check_dns_name(value: str, what: str) -> str:
    if len(value) > 253 or not _DNS_NAME.fullmatch(value):
        raise InvalidArgumentError(
            f"{what} must be dot-separated labels of letters, digits and hyphens", field=what
        )
    return value


def _header_names(names: Collection[str], what: str) -> tuple[str, ...]:
    lowered = tuple(name.lower() for name in names)
    for name in lowered:
        if not _HEADER_NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"{what} must be header names of letters, digits and hyphens", field=what
            )
    return lowered


class DkimSigner:
    """Signs outbound messages for one (domain, selector) with `sign`, the holder of the key.

    `sign` receives the data described in the module docstring and returns the raw signature;
    `clock` gives the ``t=`` timestamp (timezone-aware). Refusals: InvalidArgumentError for a bad
    domain, selector, header list or message; FailedPreconditionError when `sign` returns a
    signature that cannot be the configured algorithm's (the key is of another algorithm)."""

    def __init__(
        self,
        sign: SignFunction,
        algorithm: DkimAlgorithm,
        domain: str,
        selector: str,
        headers: Collection[str] = DEFAULT_HEADERS,
        *,
        oversign: Collection[str] = DEFAULT_OVERSIGN,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        if algorithm not in ("rsa-sha256", "ed25519-sha256"):
            raise InvalidArgumentError(
                "algorithm must be rsa-sha256 or ed25519-sha256", field="algorithm"
            )
        self._sign = sign
        self.algorithm: DkimAlgorithm = algorithm
        self.domain = _check_dns_name(domain, "domain")
        self.selector = _check_dns_name(selector, "selector")
        self._headers = tuple(dict.fromkeys(_header_names(headers, "headers")))
        if "from" not in self._headers:
            raise InvalidArgumentError("the From header must be signed", field="headers")
        self._oversign = frozenset(_header_names(oversign, "oversign"))
        if not self._oversign <= set(self._headers):
            raise InvalidArgumentError(
                "oversigned headers must be among the signed headers", field="oversign"
            )
        self._clock = clock

    async def sign_message(self, message: bytes) -> bytes:
        """The message (CRLF line endings) with a ``DKIM-Signature`` header prepended."""
        fields, section, rest = _split_message(message)
        froms = [name for name, _ in fields if name.lower() == b"from"]
        if len(froms) != 1:
            raise InvalidArgumentError(
                "the message must have exactly one From header", field="message"
            )
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidArgumentError("the clock must be timezone-aware", field="clock")

        signed_names: list[str] = []
        header_data = bytearray()
        for name in self._headers:
            instances = [f for f in fields if f[0].lower() == name.encode()]
            for field_name, value in reversed(instances):  # verifiers select bottom-up
                signed_names.append(name)
                header_data += relaxed_header(field_name, value)
            if name in self._oversign:
                signed_names.append(name)  # an absent instance: contributes nothing

        body_hash = hashlib.sha256(relaxed_body(rest[2:])).digest()
        tags = [
            "v=1",
            f"a={self.algorithm}",
            "c=relaxed/relaxed",
            f"d={self.domain}",
            f"s={self.selector}",
            f"t={int(now.timestamp())}",
        ]
        unsigned = _fold_tags(tags, signed_names, base64.b64encode(body_hash).decode("ascii"))
        header_data += relaxed_header(b"DKIM-Signature", unsigned.encode("ascii"))[:-2]

        if self.algorithm == "rsa-sha256":
            signature = await self._sign(bytes(header_data))
            if len(signature) * 8 < MIN_RSA_BITS:
                raise FailedPreconditionError("the DKIM key did not make an RSA signature")
        else:
            signature = await self._sign(hashlib.sha256(header_data).digest())
            if len(signature) != ED25519_SIGNATURE_SIZE:
                raise FailedPreconditionError("the DKIM key did not make an Ed25519 signature")
        encoded = base64.b64encode(signature).decode("ascii")
        chunks = [encoded[i : i + _B64_CHUNK] for i in range(0, len(encoded), _B64_CHUNK)]
        signed = unsigned + "\r\n\t".join(chunks)
        return b"DKIM-Signature:" + signed.encode("ascii") + b"\r\n" + section + rest


def _fold_tags(tags: list[str], signed_names: list[str], body_hash: str) -> str:
    """The DKIM-Signature value up to and including an empty ``b=``, folded near 78 columns:
    tags separated by "; ", ``h=`` folded after its colons, ``b=`` on a line of its own."""
    tokens = [(f"{tag};", " ") for tag in tags]
    for index, name in enumerate(signed_names):
        last = index == len(signed_names) - 1
        text = ("h=" if index == 0 else "") + name + (";" if last else ":")
        tokens.append((text, " " if index == 0 else ""))
    tokens.append((f"bh={body_hash};", " "))
    out = ""
    column = len("DKIM-Signature:")
    for text, separator in tokens:
        if column + len(separator) + len(text) > _MAX_LINE:
            out += "\r\n\t"
            column = 1
        elif out or separator:
            out += separator
            column += len(separator)
        out += text
        column += len(text)
    return out + "\r\n\tb="


# --- DNS record --------------------------------------------------------------------------------


def dkim_dns_name(selector: str, domain: str) -> str:
    """Where the TXT record lives: ``<selector>._domainkey.<domain>``."""
    return f"{_check_dns_name(selector, 'selector')}._domainkey.{_check_dns_name(domain, 'domain')}"


def _b64url_decode(value: str, member: str) -> bytes:
    if not _B64URL.fullmatch(value):
        raise InvalidArgumentError(f"JWK member {member} is not base64url", field="jwk")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def dkim_txt_record(jwk: Mapping[str, str]) -> str:
    """The DNS TXT value publishing a signing key's public JWK (keyvault GetPublicKey):
    ``v=DKIM1; k=rsa; p=<base64 DER SubjectPublicKeyInfo>`` for an RSA key (at least 1024 bits),
    ``v=DKIM1; k=ed25519; p=<base64 raw 32-byte key>`` for an OKP Ed25519 key.
    InvalidArgumentError for any other key, or a JWK not meant for signatures."""
    use = jwk.get("use", "")
    if use and use != "sig":
        raise InvalidArgumentError("the JWK is not a signature key", field="jwk")
    kty, alg = jwk.get("kty", ""), jwk.get("alg", "")
    if kty == "RSA":
        if alg and alg != "RS256":
            raise InvalidArgumentError("an RSA DKIM key must be RS256", field="jwk")
        n = int.from_bytes(_b64url_decode(jwk.get("n", ""), "n"), "big")
        e = int.from_bytes(_b64url_decode(jwk.get("e", ""), "e"), "big")
        if n.bit_length() < MIN_RSA_BITS or e < 3 or e % 2 == 0:
            raise InvalidArgumentError(
                f"an RSA DKIM key needs at least {MIN_RSA_BITS} bits and an odd exponent",
                field="jwk",
            )
        public_key = rsa.RSAPublicNumbers(e, n).public_key()
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"
    if kty == "OKP":
        if jwk.get("crv") != "Ed25519" or (alg and alg != "EdDSA"):
            raise InvalidArgumentError("an OKP DKIM key must be Ed25519", field="jwk")
        raw = _b64url_decode(jwk.get("x", ""), "x")
        if len(raw) != ED25519_KEY_SIZE:
            raise InvalidArgumentError("an Ed25519 key is 32 bytes", field="jwk")
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
    raise InvalidArgumentError("DKIM keys are RSA or Ed25519", field="jwk")


# --- keyvault ----------------------------------------------------------------------------------


def keyvault_signer(
    stub: KeyvaultServiceAsyncStub,
    org_id: str,
    key_id: str,
    metadata: Metadata | Callable[[], Metadata] = call_metadata,
    *,
    key_version: int = 0,
    timeout: float = 5.0,
) -> SignFunction:
    """A `sign` for DkimSigner calling keyvault Sign with the org's signing key (the current
    version unless `key_version`); `metadata` is fixed or made per call (default: this service's
    call metadata; keyvault authorizes by the mTLS identity and the principal's org).
    Refusals become NotFoundError, PermissionDeniedError, FailedPreconditionError or
    UnavailableError; any other failure propagates as the gRPC error."""

    async def sign(data: bytes) -> bytes:
        request = keyvault_pb2.SignRequest(
            org_id=org_id, key_id=key_id, key_version=key_version, message=data
        )
        call_meta = metadata() if callable(metadata) else metadata
        try:
            reply = await stub.Sign(request, metadata=call_meta, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            code = error.code()
            details = error.details() or "no details"  # keyvault's details hold no key bytes
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFoundError(f"keyvault: {details}") from None
            if code == grpc.StatusCode.PERMISSION_DENIED:
                raise PermissionDeniedError(f"keyvault: {details}") from None
            if code == grpc.StatusCode.FAILED_PRECONDITION:
                raise FailedPreconditionError(f"keyvault refused: {details}") from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise UnavailableError("keyvault is unavailable, try again later") from None
            raise
        return reply.signature

    return sign
