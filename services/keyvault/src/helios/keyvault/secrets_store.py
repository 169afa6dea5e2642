"""Platform secrets (E7): versioned values sealed by the root seal, for Helios services only.

A platform secret is a named, versioned value that Helios services themselves need (an SMTP
password, an upstream API token, ...). Each version is sealed directly by the seal provider (the
root of the key hierarchy) with the context `helios-keyvault/secret/<name>/<version>`, so a sealed
value copied to another name or version does not open. Versions are append-only: PutSecret adds
the next version, older ones stay readable by number.

Root only. Until authz's platform root role exists (issue #5), "root" means: a Helios service
calling by its mTLS identity, with no principal on the call, and listed in the `secrets_callers`
setting. A call carrying any principal (a user, or a service acting for one) is refused with
PERMISSION_DENIED, and so is a service identity not in the list.

Check-and-set: PutSecret with `expected_version` writes only if that is the current version (0: the
secret must not exist yet); a mismatch is FAILED_PRECONDITION (the caller should re-read and
decide, as AIP-154 etags do), never a silent overwrite. Concurrent writers of one name are
serialised by the store, so two check-and-set writers expecting the same version cannot both win.

Values never reach a log line, an error message, an audit event or a repr: every PutSecret is
audited through the outbox with the name, the version and the calling service only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from helios.keyvault.ports import SealProvider

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SECRETS_CALLERS",
    "MAX_PAGE_SIZE",
    "MAX_SECRET_BYTES",
    "Secret",
    "SecretInfo",
    "SecretStore",
    "SecretTransaction",
    "SecretUnitOfWork",
    "SecretWritten",
    "StoredSecret",
    "secret_context",
]

MAX_SECRET_BYTES = 64 * 1024
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Helios services that may use platform secrets when the `secrets_callers` setting is not given.
DEFAULT_SECRETS_CALLERS = frozenset({"identity", "gateway", "audit", "ai-broker", "authz"})
_MAX_VERSION = 2**31 - 1  # int32 in the API
_NAME = re.compile(r"[a-z0-9][a-z0-9._/-]{0,199}")
_PREFIX = re.compile(r"[a-z0-9._/-]{0,200}")
_NAME_RULE = "name must match ^[a-z0-9][a-z0-9._/-]{0,199}$ and must not contain '..'"


def secret_context(name: str, version: int) -> bytes:
    """The seal context of one version: binds the sealed value to its name and version (the
    version has no '/', so the string is unambiguous)."""
    return f"helios-keyvault/secret/{name}/{version}".encode()


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One version as stored: the value only sealed."""

    name: str
    version: int
    sealed_value: bytes = field(repr=False)
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Secret:
    """One version opened for the caller; the value is kept out of repr."""

    name: str
    version: int
    value: bytes = field(repr=False)
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SecretWritten:
    """What PutSecret wrote."""

    name: str
    version: int
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """Metadata of a secret, never its value."""

    name: str
    current_version: int
    created_at: dt.datetime  # of version 1
    updated_at: dt.datetime  # of the current version


class SecretTransaction(Protocol):
    """Reads and writes of platform secrets inside one transaction, with their audit events."""

    async def latest_version(self, name: str, *, lock: bool = False) -> int:
        """The current version of `name` (0 if it does not exist); `lock` serialises writers of
        this name until the transaction ends (also when the name does not exist yet)."""
        ...

    async def add(self, secret: StoredSecret) -> None:
        """Insert a version; raises FailedPreconditionError if it exists already."""
        ...

    async def get(self, name: str, version: int) -> StoredSecret | None:
        """One version (0: the latest), or None."""
        ...

    async def page(self, prefix: str, after: str, limit: int) -> list[SecretInfo]:
        """Metadata of up to `limit` secrets whose name starts with `prefix` and sorts after
        `after`, ordered by name."""
        ...

    async def record(self, change: Change, ctx: CallContext) -> None:
        """Enqueue the audit event of `change`; it commits or rolls back with the transaction."""
        ...


class SecretUnitOfWork(Protocol):
    """Opens a transaction: commits when the block ends normally, rolls back on an exception."""

    def __call__(self) -> AbstractAsyncContextManager[SecretTransaction]: ...


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidArgumentError(_NAME_RULE, field="name")
    return name


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    bad = InvalidArgumentError("page_token is not a token of ListSecrets", field="page_token")
    if len(token) > 400:
        raise bad
    try:
        name = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        raise bad from None
    if not _NAME.fullmatch(name):
        raise bad
    return name


class SecretStore:
    """PutSecret / GetSecret / ListSecrets over the secrets port and the root seal."""

    def __init__(
        self,
        uow: SecretUnitOfWork,
        seal: SealProvider,
        clock: Callable[[], dt.datetime],
        *,
        callers: Iterable[str] = DEFAULT_SECRETS_CALLERS,
    ) -> None:
        self._uow = uow
        self._seal = seal
        self._clock = clock
        self._callers = frozenset(callers)

    def authorize(self, ctx: CallContext) -> None:
        """Root only: a listed Helios service by its mTLS identity, with no principal on the call
        (until authz has a platform root role, #5). Raises PermissionDeniedError otherwise."""
        if ctx.principal is not None:
            raise PermissionDeniedError(
                "platform secrets are for Helios services only, never for a user principal"
            )
        if ctx.caller not in self._callers:
            raise PermissionDeniedError("this caller may not use platform secrets")

    async def put(
        self, ctx: CallContext, name: str, value: bytes, expected_version: int | None
    ) -> SecretWritten:
        """Store `value` as the next version of `name`. With `expected_version` (0: must not
        exist) only if that is the current version, else FailedPreconditionError. Audited."""
        self.authorize(ctx)
        _check_name(name)
        if not value:
            raise InvalidArgumentError("value is required", field="value")
        if len(value) > MAX_SECRET_BYTES:
            raise InvalidArgumentError(f"value over {MAX_SECRET_BYTES} bytes", field="value")
        if expected_version is not None and expected_version < 0:
            raise InvalidArgumentError(
                "expected_version must be 0 or more", field="expected_version"
            )
        async with self._uow() as tx:
            current = await tx.latest_version(name, lock=True)
            if expected_version is not None and expected_version != current:
                raise FailedPreconditionError(
                    f"check-and-set failed: expected version {expected_version}, "
                    f"the current version is {current}"
                )
            if current >= _MAX_VERSION:
                raise FailedPreconditionError("the secret has no version numbers left")
            version = current + 1
            now = self._clock()
            sealed = self._seal.wrap(value, secret_context(name, version))
            await tx.add(StoredSecret(name, version, sealed, now))
            await tx.record(
                Change(
                    action="keyvault.secret.put",
                    resource_type="keyvault.secret",
                    resource_id=name,
                    diff={"name": name, "version": version, "caller": ctx.caller},
                ),
                ctx,
            )
        return SecretWritten(name=name, version=version, created_at=now)

    async def get(self, ctx: CallContext, name: str, version: int) -> Secret:
        """One version of a secret (0: the latest), opened. NotFoundError if there is none."""
        self.authorize(ctx)
        _check_name(name)
        if version < 0:
            raise InvalidArgumentError("version must be 0 (latest) or more", field="version")
        async with self._uow() as tx:
            stored = await tx.get(name, version)
        if stored is None:
            raise NotFoundError(
                "no such secret version" if version else "no such secret", field="name"
            )
        value = self._seal.unwrap(stored.sealed_value, secret_context(name, stored.version))
        return Secret(name=name, version=stored.version, value=value, created_at=stored.created_at)

    async def list_secrets(
        self, ctx: CallContext, prefix: str, page_size: int, page_token: str
    ) -> tuple[list[SecretInfo], str]:
        """Metadata of the secrets under `prefix`, ordered by name, one page at a time (never
        values); returns the page and the next page's token ('' on the last page)."""
        self.authorize(ctx)
        if not _PREFIX.fullmatch(prefix):
            raise InvalidArgumentError(
                "prefix must be at most 200 of a-z 0-9 . _ / -", field="prefix"
            )
        if page_size < 0:
            raise InvalidArgumentError("page_size must be 0 or more", field="page_size")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _decode_token(page_token) if page_token else ""
        async with self._uow() as tx:
            found = await tx.page(prefix, after, size + 1)
        page = found[:size]
        more = len(found) > size
        return page, _encode_token(page[-1].name) if more else ""
