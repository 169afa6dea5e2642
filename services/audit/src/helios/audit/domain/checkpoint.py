"""Signed checkpoints (tree heads) of an org's log: the signed bytes and their verification."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from helios.audit.domain.leaf import timestamp

__all__ = [
    "Checkpoint",
    "LogIntegrityError",
    "checkpoint_note",
    "public_key_from_jwk",
    "signature_valid",
]

_HEADER = "helios-audit-checkpoint/v1"


class LogIntegrityError(RuntimeError):
    """The stored tree contradicts itself or a signed checkpoint (a missing node, a log
    smaller than its checkpoint, a root that does not extend the previous one): nothing is
    signed or served from it, and callers see only an internal error."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """(size, root) of an org's log at `sealed_at`, chained to the previous checkpoint and
    signed by the keyvault key version `key_id` (`<key uuid>:<version>`, the JWK `kid`)."""

    org_id: str
    tree_size: int
    root_hash: bytes
    sealed_at: dt.datetime
    previous_size: int
    previous_root_hash: bytes
    key_id: str
    signature: bytes


def checkpoint_note(
    org_id: str,
    tree_size: int,
    root_hash: bytes,
    sealed_at: dt.datetime,
    previous_size: int,
    previous_root_hash: bytes,
) -> bytes:
    """The exact bytes a checkpoint's signature covers: one field per line, roots in base64."""
    lines = [
        _HEADER,
        org_id,
        str(tree_size),
        base64.b64encode(root_hash).decode(),
        timestamp(sealed_at),
        str(previous_size),
        base64.b64encode(previous_root_hash).decode(),
    ]
    return ("\n".join(lines) + "\n").encode()


def public_key_from_jwk(jwk: Mapping[str, str]) -> Ed25519PublicKey:
    """The Ed25519 key of an OKP JWK; ValueError for any other kind of key."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("checkpoints are signed with Ed25519 (kty OKP, crv Ed25519)")
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


def signature_valid(checkpoint: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> bool:
    """Whether the checkpoint is signed by the key its `key_id` names, among `keys` (by kid)."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return False
    note = checkpoint_note(
        checkpoint.org_id,
        checkpoint.tree_size,
        checkpoint.root_hash,
        checkpoint.sealed_at,
        checkpoint.previous_size,
        checkpoint.previous_root_hash,
    )
    try:
        key.verify(checkpoint.signature, note)
    except InvalidSignature:
        return False
    return True
