"""Per-row secrets (E4): seal a column value under a cached data key issued by keyvault.

A service keeps one `RowCipher` per process. It asks keyvault (GenerateDataKey) for a data key per
(org, key, table, column), keeps it in memory while it is young and lightly used, and encrypts
every row of that column with it, so keyvault is not called for every row. Each stored value
carries its data key wrapped by keyvault, so any replica can decrypt it: it unwraps the data key
once (DecryptDataKey) and caches it too.

Stored value format ``HRS1``, all integers big-endian::

    offset   size  field
    0        4     magic b"HRS1" (Helios row secret, format 1)
    4        2     w = length of the wrapped data key, uint16, >= 1
    6        w     the data key wrapped by keyvault (its ciphertext format, kind DATA_KEY), bound
                   by keyvault to (org, table, row "", column)
    6+w      12    nonce, random per value
    18+w     n+16  AES-256-GCM ciphertext of the n plaintext bytes, then the 16-byte tag

The associated data of the AEAD is the magic followed by org_id, table, column and row_id, each
as a uint32 length and its UTF-8 bytes (length prefixes make the encoding injective). A value
copied to another row, column, table or org therefore fails to open: another table, column or
org already fails at keyvault (the wrapped data key is bound to them), another row fails here.
Editing the wrapped key yields another (or no) data key, and editing the nonce or ciphertext
fails the tag. Every such failure raises `InvalidArgumentError` whose message names no key or
plaintext bytes.

Rewrap (E6): after keyvault rotates the key, `RowCipher.rewrap` swaps a stored value's wrapped
data key for one wrapped under the key's current version (keyvault's Rewrap: no plaintext leaves
keyvault). The data key itself does not change, so the nonce and AES-GCM part of the value stay
as they are. Rows sharing one wrapped data key cost one Rewrap call: the mapping old wrapped key
-> new wrapped key is cached (at most `max_rewrapped` entries, least recently used dropped first).
This matters beyond speed: keyvault moves one live data key from the old version to the new one
per Rewrap call, so rewrapping the same data key twice would count it twice (another
`RowCipher`, e.g. in another process, does not know this mapping: see `rewrap_job` on reruns).
`wrapped_version` reads the key version a value's data key is wrapped under (from keyvault's
ciphertext header), so a job can skip values already on its target version without calling
keyvault. See `helios.kernel.rewrap_job` for the job that walks a table.

Cache bounds (all per `RowCipher`): a data key encrypts for at most `max_age` seconds,
`max_uses` values and `max_bytes` plaintext bytes before a new one is generated; at most
`max_keys` data keys are cached for encryption and as many unwrapped keys for decryption (least
recently used dropped first); an unwrapped key is kept at most `max_age` seconds. Nothing here
logs; keys live only inside AESGCM objects whose references are dropped on eviction (Python
cannot wipe memory).

A `RowCipher` belongs to one event loop: it is safe for concurrent coroutines (one asyncio.Lock
per cache slot, so concurrent encryptions of one column share one GenerateDataKey), not for
threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import grpc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message

from helios.kernel.clients import call_metadata
from helios.kernel.errors import (
    DomainError,
    FailedPreconditionError,
    InvalidArgumentError,
    UnavailableError,
)
from helios.proto.keyvault.v1 import keyvault_pb2

if TYPE_CHECKING:
    from helios.proto.keyvault.v1.keyvault_pb2_grpc import KeyvaultServiceAsyncStub

__all__ = [
    "DATA_KEY_SIZE",
    "MAGIC",
    "DataKeyClient",
    "GrpcDataKeyClient",
    "RowCipher",
    "StaleKeyVersionError",
    "wrapped_version",
]

MAGIC = b"HRS1"
DATA_KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_WRAPPED_LENGTH = struct.Struct(">H")
_FIELD_LENGTH = struct.Struct(">I")
_PREFIX = len(MAGIC) + _WRAPPED_LENGTH.size
# keyvault ciphertext header: b"HLV", format 1, kind, algorithm, key id (16), version (uint32)
_KEYVAULT_MAGIC = b"HLV"
_KEYVAULT_FORMAT_V1 = 0x01
_KEYVAULT_VERSION = struct.Struct(">I")
_KEYVAULT_VERSION_AT = 22
_DOES_NOT_OPEN = (
    "the stored value does not open for this org, table, column and row "
    "(it was moved, altered or truncated)"
)

Metadata = Sequence[tuple[str, str | bytes]]


class DataKeyClient(Protocol):
    """What `RowCipher` needs from keyvault: data keys bound to (org, table, column)."""

    async def generate(
        self, org_id: str, key_id: str, table: str, column: str
    ) -> tuple[bytes, bytes]:
        """A fresh 32-byte data key and its copy wrapped by keyvault key `key_id`, bound to
        (org, table, row "", column). Not idempotent: every call makes a new data key (one more
        live data key in KeyInventory). Raises a DomainError when keyvault refuses."""
        ...

    async def unwrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        """The 32-byte data key inside `wrapped`. Read-only and idempotent. Raises
        InvalidArgumentError when it does not open in this org and (table, column), another
        DomainError when keyvault refuses otherwise (e.g. the key was destroyed)."""
        ...

    async def rewrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        """`wrapped` re-wrapped by keyvault under its key's current version (same data key, same
        binding to org, table and column); no plaintext leaves keyvault. When the version
        changes, keyvault moves one live data key from the old version to the new one in
        KeyInventory, so call it once per distinct wrapped key. Raises InvalidArgumentError
        when it does not open in this org and (table, column), another DomainError when
        keyvault refuses otherwise (e.g. the version is destroyed or below the minimum)."""
        ...


class StaleKeyVersionError(FailedPreconditionError):
    """keyvault's current version of the key is below the version a rewrap was asked to reach:
    the key has not been rotated (far enough). `value` is the value rewrapped to the current
    version when keyvault did move its data key forward (store it), else None."""

    def __init__(self, message: str, *, value: bytes | None = None) -> None:
        super().__init__(message)
        self.value = value


class GrpcDataKeyClient:
    """`DataKeyClient` over KeyvaultService, calling as this Helios service: keyvault authorizes
    the call by the channel's mTLS identity and acts in the org named in the request."""

    def __init__(
        self,
        stub: KeyvaultServiceAsyncStub,
        metadata_factory: Callable[[], Metadata] = call_metadata,
        *,
        timeout: float = 5.0,
    ) -> None:
        self._stub = stub
        self._metadata = metadata_factory
        self._timeout = timeout

    async def _call(self, method: Any, request: Message) -> Any:
        """One keyvault call; refusals the caller can act on become domain errors."""
        try:
            return await method(request, metadata=self._metadata(), timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            mapped = _domain_error(error)
            if mapped is None:
                raise
            raise mapped from None

    async def generate(
        self, org_id: str, key_id: str, table: str, column: str
    ) -> tuple[bytes, bytes]:
        """GenerateDataKey with AadContext {table, row_id: "", column}."""
        request = keyvault_pb2.GenerateDataKeyRequest(
            org_id=org_id,
            key_id=key_id,
            context=keyvault_pb2.AadContext(table=table, row_id="", column=column),
        )
        reply = await self._call(self._stub.GenerateDataKey, request)
        return reply.plaintext_data_key, reply.wrapped_data_key

    async def unwrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        """DecryptDataKey with AadContext {table, row_id: "", column}."""
        request = keyvault_pb2.DecryptDataKeyRequest(
            org_id=org_id,
            wrapped_data_key=wrapped,
            context=keyvault_pb2.AadContext(table=table, row_id="", column=column),
        )
        reply = await self._call(self._stub.DecryptDataKey, request)
        return bytes(reply.plaintext_data_key)

    async def rewrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        """Rewrap with AadContext {table, row_id: "", column}."""
        request = keyvault_pb2.RewrapRequest(
            org_id=org_id,
            ciphertext=wrapped,
            context=keyvault_pb2.AadContext(table=table, row_id="", column=column),
        )
        reply = await self._call(self._stub.Rewrap, request)
        return bytes(reply.ciphertext)


def _domain_error(error: grpc.aio.AioRpcError) -> DomainError | None:
    """The domain error a keyvault refusal means to our caller; anything else (a wrong key id,
    a caller keyvault does not accept) is a deployment fault and propagates unchanged."""
    code = error.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgumentError(_DOES_NOT_OPEN)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        # keyvault's messages never hold key material or plaintext.
        return FailedPreconditionError(f"keyvault refused: {error.details() or 'no details'}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return UnavailableError("keyvault is unavailable, try again later")
    return None


# --- the cache ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _EncryptingKey:
    aead: AESGCM
    wrapped: bytes
    created: float
    uses: int = 0
    encrypted_bytes: int = 0


@dataclass(slots=True)
class _UnwrappedKey:
    aead: AESGCM
    created: float


@dataclass(slots=True)
class _RewrappedKey:
    wrapped: bytes
    version: int
    created: float


_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V", _EncryptingKey, _UnwrappedKey, _RewrappedKey)


class _Slot(Generic[_V]):
    """One cache entry and the lock that makes concurrent refills wait for a single call."""

    __slots__ = ("entry", "lock")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.entry: _V | None = None


class _SlotCache(Generic[_K, _V]):
    """At most `capacity` slots, least recently used evicted first; an evicted slot's key is
    dropped at once (a coroutine still holding the slot keeps only what it already read)."""

    def __init__(self, capacity: int, max_age: float) -> None:
        self._slots: OrderedDict[_K, _Slot[_V]] = OrderedDict()
        self._capacity = capacity
        self._max_age = max_age
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._slots)

    def peek(self, key: _K) -> _V | None:
        """The entry cached for `key`, if any, without creating a slot or marking it used."""
        found = self._slots.get(key)
        return None if found is None else found.entry

    def entries(self) -> list[tuple[_K, _V]]:
        """The filled slots' keys and entries (a snapshot)."""
        return [(k, s.entry) for k, s in self._slots.items() if s.entry is not None]

    def slot(self, key: _K, now: float) -> _Slot[_V]:
        """The slot for `key` (created if needed), marked most recently used."""
        if now >= self._next_sweep:
            self._sweep(now)
        found = self._slots.get(key)
        if found is not None:
            self._slots.move_to_end(key)
            return found
        created: _Slot[_V] = _Slot()
        self._slots[key] = created
        while len(self._slots) > self._capacity:
            _, evicted = self._slots.popitem(last=False)
            evicted.entry = None
        return created

    def _sweep(self, now: float) -> None:
        """Drop expired keys even in slots nobody asks for again, so none outlives max_age by
        much more than half of it."""
        self._next_sweep = now + self._max_age / 2
        for key in [
            k
            for k, slot in self._slots.items()
            if slot.entry is not None
            and now - slot.entry.created >= self._max_age
            and not slot.lock.locked()
        ]:
            self._slots.pop(key).entry = None


# --- the cipher ----------------------------------------------------------------------------------


def _associated_data(org_id: str, table: str, column: str, row_id: str) -> bytes:
    """MAGIC, then org, table, column and row as uint32 length + UTF-8 bytes each.

    Raises InvalidArgumentError for an empty table, column or row, or a part that is not
    encodable as UTF-8 (a lone surrogate); org_id may be empty (a platform key).
    """
    out = bytearray(MAGIC)
    for name, value in (
        ("org_id", org_id),
        ("table", table),
        ("column", column),
        ("row_id", row_id),
    ):
        if not value and name != "org_id":
            raise InvalidArgumentError(f"{name} must not be empty", field=name)
        try:
            encoded = value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError(f"{name} is not valid UTF-8", field=name) from None
        out += _FIELD_LENGTH.pack(len(encoded))
        out += encoded
    return bytes(out)


def _parse(blob: bytes) -> tuple[bytes, bytes, bytes]:
    """(wrapped data key, nonce, ciphertext with tag) of a stored value; InvalidArgumentError if
    it is not an HRS1 value."""
    if len(blob) < _PREFIX or blob[: len(MAGIC)] != MAGIC:
        raise InvalidArgumentError("the stored value is not a Helios row secret (HRS1)")
    (length,) = _WRAPPED_LENGTH.unpack_from(blob, len(MAGIC))
    if length == 0 or len(blob) < _PREFIX + length + NONCE_SIZE + TAG_SIZE:
        raise InvalidArgumentError(_DOES_NOT_OPEN)
    nonce_at = _PREFIX + length
    return (
        bytes(blob[_PREFIX:nonce_at]),
        bytes(blob[nonce_at : nonce_at + NONCE_SIZE]),
        bytes(blob[nonce_at + NONCE_SIZE :]),
    )


def _key_version(wrapped: bytes) -> int:
    """The keyvault key version a wrapped data key is wrapped under, from keyvault's ciphertext
    header; InvalidArgumentError when `wrapped` is not in that format (v1)."""
    end = _KEYVAULT_VERSION_AT + _KEYVAULT_VERSION.size
    if (
        len(wrapped) < end
        or wrapped[: len(_KEYVAULT_MAGIC)] != _KEYVAULT_MAGIC
        or wrapped[len(_KEYVAULT_MAGIC)] != _KEYVAULT_FORMAT_V1
    ):
        raise InvalidArgumentError("the wrapped data key is not in keyvault's ciphertext format")
    (version,) = _KEYVAULT_VERSION.unpack_from(wrapped, _KEYVAULT_VERSION_AT)
    return int(version)


def wrapped_version(value: bytes) -> int:
    """The keyvault key version that wraps the data key of a stored (HRS1) value. Reads only
    the clear header, calls nobody and proves nothing about authenticity (keyvault checks that on
    unwrap). Raises InvalidArgumentError when the value is not HRS1 or its wrapped key is not in
    keyvault's ciphertext format."""
    wrapped, _, _ = _parse(value)
    return _key_version(wrapped)


def _aead(key: bytes) -> AESGCM:
    if len(key) != DATA_KEY_SIZE:
        raise ValueError("the data key client returned a key that is not 32 bytes")
    return AESGCM(key)


class RowCipher:
    """Encrypts and decrypts column values of any org with cached keyvault data keys.

    `key_for(org_id)` names the keyvault encryption key (its id) that wraps the org's data keys;
    it is asked on every encryption, so switching keys takes effect at once. `clock` is a
    monotonic clock in seconds (tests inject one). `max_rewrapped` bounds the rewrap cache (old
    wrapped key -> new wrapped key); its entries hold no key material and do not age out.
    """

    def __init__(
        self,
        client: DataKeyClient,
        key_for: Callable[[str], str],
        *,
        max_age: float = 300.0,
        max_uses: int = 100_000,
        max_bytes: int = 1 << 30,
        max_keys: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        max_rewrapped: int = 10_000,
    ) -> None:
        if max_age <= 0 or max_uses < 1 or max_bytes < 1 or max_keys < 1 or max_rewrapped < 1:
            raise ValueError(
                "max_age, max_uses, max_bytes, max_keys and max_rewrapped must be positive"
            )
        self._client = client
        self._key_for = key_for
        self._max_age = max_age
        self._max_uses = max_uses
        self._max_bytes = max_bytes
        self._clock = clock
        self._encrypting: _SlotCache[tuple[str, str, str, str], _EncryptingKey] = _SlotCache(
            max_keys, max_age
        )
        self._unwrapped: _SlotCache[bytes, _UnwrappedKey] = _SlotCache(max_keys, max_age)
        self._rewrapped: _SlotCache[bytes, _RewrappedKey] = _SlotCache(max_rewrapped, float("inf"))

    async def encrypt(
        self, org_id: str, table: str, column: str, row_id: str, plaintext: bytes
    ) -> bytes:
        """The stored form (HRS1) of `plaintext` for this org, table, column and row.

        Raises InvalidArgumentError for an empty table, column or row; a DomainError when
        keyvault refuses to issue a data key.
        """
        associated = _associated_data(org_id, table, column, row_id)
        data_key = await self._encrypting_key(
            org_id, self._key_for(org_id), table, column, len(plaintext)
        )
        data_key.uses += 1
        data_key.encrypted_bytes += len(plaintext)
        nonce = os.urandom(NONCE_SIZE)
        sealed = data_key.aead.encrypt(nonce, plaintext, associated)
        return b"".join(
            (MAGIC, _WRAPPED_LENGTH.pack(len(data_key.wrapped)), data_key.wrapped, nonce, sealed)
        )

    async def decrypt(
        self, org_id: str, table: str, column: str, row_id: str, blob: bytes
    ) -> bytes:
        """The plaintext of a stored value of this org, table, column and row.

        Raises InvalidArgumentError when the value is malformed, altered, or belongs elsewhere
        (never a partial plaintext); another DomainError when keyvault refuses the data key.
        """
        associated = _associated_data(org_id, table, column, row_id)
        wrapped, nonce, sealed = _parse(blob)
        aead = await self._unwrapped_key(org_id, table, column, wrapped)
        try:
            return aead.decrypt(nonce, sealed, associated)
        except InvalidTag:
            raise InvalidArgumentError(_DOES_NOT_OPEN) from None

    async def rewrap(
        self,
        org_id: str,
        table: str,
        column: str,
        row_id: str,
        value: bytes,
        *,
        target_version: int | None = None,
    ) -> bytes | None:
        """`value` with only its wrapped data key replaced by the same data key wrapped under the
        key's current version (nonce and AES-GCM part unchanged, so it decrypts as before), or
        None when there is nothing to do: its key version is already >= `target_version`
        (decided from the header, without calling keyvault), or, without a target, keyvault's
        current version is the one it already has.

        Values sharing one wrapped data key cost one Rewrap call: the new wrapped key is cached
        per old one and never asked for again for it (keyvault would count the data key twice);
        to go further after another rotation, the cached new form is rewrapped instead.

        Raises StaleKeyVersionError when keyvault's current version is below `target_version`;
        if keyvault has moved the data key forward all the same, the error's `value` is the
        rewrapped value (store it: keyvault already counts its data key under the new version).
        Raises InvalidArgumentError when the value is malformed or its data key does not open in
        this org, table and column; another DomainError when keyvault refuses otherwise. The
        row id is only checked to be well-formed: the value's own tag is not verified here (that
        needs the data key; `decrypt` does it).
        """
        _associated_data(org_id, table, column, row_id)
        wrapped, _, _ = _parse(value)
        version = _key_version(wrapped)
        if target_version is not None and version >= target_version:
            return None
        entry = await self._rewrapped_key(org_id, table, column, wrapped, target_version)
        moved = (
            None
            if entry.version <= version
            else b"".join(
                (
                    MAGIC,
                    _WRAPPED_LENGTH.pack(len(entry.wrapped)),
                    entry.wrapped,
                    value[_PREFIX + len(wrapped) :],
                )
            )
        )
        if target_version is not None and entry.version < target_version:
            raise StaleKeyVersionError(
                f"the key's current version is {entry.version}, below the target version "
                f"{target_version}: rotate the key first",
                value=moved,
            )
        return moved

    async def _rewrapped_key(
        self, org_id: str, table: str, column: str, wrapped: bytes, target_version: int | None
    ) -> _RewrappedKey:
        slot = self._rewrapped.slot(_unwrap_id(org_id, table, column, wrapped), self._clock())

        def fresh(found: _RewrappedKey | None) -> bool:
            return found is not None and (target_version is None or found.version >= target_version)

        entry = slot.entry
        if entry is not None and fresh(entry):
            return entry
        async with slot.lock:
            entry = slot.entry
            if entry is not None and fresh(entry):
                return entry
            # Never the same old form twice: keyvault moves a live data key per call.
            source = wrapped if entry is None else entry.wrapped
            try:
                new = await self._client.rewrap(org_id, source, table, column)
            except InvalidArgumentError:
                raise InvalidArgumentError(_DOES_NOT_OPEN) from None
            if len(new) > 0xFFFF:
                raise ValueError("the data key client returned a wrapped key that is too long")
            new_version = _key_version(new)
            if entry is not None and new_version <= entry.version:
                return entry  # still the current version: keyvault moved nothing
            now = self._clock()
            entry = _RewrappedKey(wrapped=new, version=new_version, created=now)
            slot.entry = entry
            if new_version > _key_version(source):
                self._follow(org_id, table, column, source, new, now)
            return entry

    def _follow(
        self, org_id: str, table: str, column: str, old: bytes, new: bytes, now: float
    ) -> None:
        """Point this process's caches at the rewrapped key: values encrypted from now on carry
        the new wrapped key (keyvault has moved the data key's count to the new version), and an
        already unwrapped data key is reused for the new wrapped form."""
        for (org, _, tbl, col), encrypting in self._encrypting.entries():
            if (org, tbl, col) == (org_id, table, column) and encrypting.wrapped == old:
                encrypting.wrapped = new
        unwrapped = self._unwrapped.peek(_unwrap_id(org_id, table, column, old))
        if unwrapped is not None:
            self._unwrapped.slot(_unwrap_id(org_id, table, column, new), now).entry = _UnwrappedKey(
                aead=unwrapped.aead, created=unwrapped.created
            )

    def _usable(self, entry: _EncryptingKey | None, size: int, now: float) -> bool:
        return (
            entry is not None
            and now - entry.created < self._max_age
            and entry.uses < self._max_uses
            and (entry.encrypted_bytes == 0 or entry.encrypted_bytes + size <= self._max_bytes)
        )

    async def _encrypting_key(
        self, org_id: str, key_id: str, table: str, column: str, size: int
    ) -> _EncryptingKey:
        slot = self._encrypting.slot((org_id, key_id, table, column), self._clock())
        entry = slot.entry
        if entry is not None and self._usable(entry, size, self._clock()):
            return entry
        async with slot.lock:
            entry = slot.entry
            if entry is not None and self._usable(entry, size, self._clock()):
                return entry
            key, wrapped = await self._client.generate(org_id, key_id, table, column)
            aead = _aead(key)
            del key
            now = self._clock()
            entry = _EncryptingKey(aead=aead, wrapped=wrapped, created=now)
            slot.entry = entry
            # This process can read what it just wrote without asking keyvault.
            self._unwrapped.slot(
                _unwrap_id(org_id, table, column, wrapped), now
            ).entry = _UnwrappedKey(aead=aead, created=now)
            return entry

    async def _unwrapped_key(self, org_id: str, table: str, column: str, wrapped: bytes) -> AESGCM:
        slot = self._unwrapped.slot(_unwrap_id(org_id, table, column, wrapped), self._clock())
        entry = slot.entry
        if entry is not None and self._clock() - entry.created < self._max_age:
            return entry.aead
        async with slot.lock:
            entry = slot.entry
            if entry is not None and self._clock() - entry.created < self._max_age:
                return entry.aead
            slot.entry = None
            try:
                key = await self._client.unwrap(org_id, wrapped, table, column)
            except InvalidArgumentError:
                raise InvalidArgumentError(_DOES_NOT_OPEN) from None
            aead = _aead(key)
            del key
            slot.entry = _UnwrappedKey(aead=aead, created=self._clock())
            return aead


def _unwrap_id(org_id: str, table: str, column: str, wrapped: bytes) -> bytes:
    """Cache id of an unwrapped key: sha256 of the wrapped key and the context keyvault bound it
    to, so a hit never skips a check keyvault would have made (another org, table or column)."""
    digest = hashlib.sha256()
    for part in (org_id.encode(), table.encode(), column.encode(), wrapped):
        digest.update(_FIELD_LENGTH.pack(len(part)))
        digest.update(part)
    return digest.digest()
