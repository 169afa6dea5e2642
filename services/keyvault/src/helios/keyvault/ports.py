"""What keyvault's use cases need from the outside world, owned here and implemented by adapters."""

from __future__ import annotations

import datetime as dt
import uuid
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.keyvault.domain.model import KeyRecord, KeyVersionRecord

__all__ = ["KeyTransaction", "SealProvider", "UnitOfWork"]


class KeyTransaction(Protocol):
    """Reads and writes inside one database transaction, together with its audit events."""

    async def key(self, key_id: uuid.UUID, *, for_update: bool = False) -> KeyRecord | None:
        """The key with all its versions, or None; `for_update` locks its row."""
        ...

    async def keys(self, org_id: str, purpose: int, include_destroyed: bool) -> list[KeyRecord]:
        """The org's keys (purpose 0: any), oldest first."""
        ...

    async def add_key(self, key: KeyRecord) -> None:
        """Insert a key and its versions; raises AlreadyExistsError when the name is taken."""
        ...

    async def add_version(
        self, key_id: uuid.UUID, version: KeyVersionRecord, next_rotation_at: dt.datetime | None
    ) -> None:
        """Insert a new version, make it current and set the next scheduled rotation."""
        ...

    async def due_for_rotation(self, now: dt.datetime, limit: int) -> list[uuid.UUID]:
        """Ids of keys whose scheduled rotation is due, locked (SKIP LOCKED: replicas share)."""
        ...

    async def count_use(self, key_id: uuid.UUID, version: int, *, data_key: bool) -> None:
        """One more encryption with the version: a live ciphertext or a live data key."""
        ...

    async def move_live(
        self, key_id: uuid.UUID, source: int, target: int, *, data_key: bool
    ) -> None:
        """A rewrap moved one ciphertext (or data key) from `source` to `target`."""
        ...

    async def set_min_decryption_version(self, key_id: uuid.UUID, version: int) -> None:
        """Raise (or set) the lowest version that still decrypts."""
        ...

    async def destroy_versions(
        self, key_id: uuid.UUID, versions: list[int], at: dt.datetime, *, whole_key: bool
    ) -> None:
        """Erase the sealed material of `versions` (and mark the key destroyed if whole_key)."""
        ...

    async def record(self, change: Change, ctx: CallContext) -> None:
        """Enqueue the audit event of `change`; it commits or rolls back with the transaction."""
        ...


class UnitOfWork(Protocol):
    """Opens a transaction: commits when the block ends normally, rolls back on an exception."""

    def __call__(self) -> AbstractAsyncContextManager[KeyTransaction]: ...


class SealProvider(Protocol):
    """Wraps and unwraps the KEK material kept in the database under the root of the hierarchy."""

    name: str

    def wrap(self, secret: bytes, context: bytes) -> bytes:
        """Encrypt `secret` bound to `context`; returns an opaque blob. Not deterministic."""
        ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Return the secret of a `wrap` blob; raises the provider's error (a SealError) if the
        root key or context differ or the blob was altered."""
        ...
