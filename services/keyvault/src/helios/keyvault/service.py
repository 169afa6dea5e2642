"""Keyvault's use cases: keys per org, envelope encryption, rotation, rewrap, crypto-shredding."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from helios.kernel.changes import Change
from helios.kernel.context import CallContext
from helios.kernel.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from helios.keyvault.domain import ciphertext, material
from helios.keyvault.domain.ciphertext import CiphertextError, Kind
from helios.keyvault.domain.model import (
    PURPOSE_ENCRYPTION,
    PURPOSE_SIGNING,
    KeyRecord,
    KeyVersionRecord,
)
from helios.keyvault.ports import KeyTransaction, SealProvider, UnitOfWork

__all__ = [
    "DEFAULT_ROTATION",
    "MAX_PLAINTEXT_BYTES",
    "MAX_USES",
    "Aad",
    "KeyvaultService",
    "Sealed",
]

MAX_PLAINTEXT_BYTES = 64 * 1024
# Encryption keys rotate quarterly unless told otherwise (E6).
DEFAULT_ROTATION = dt.timedelta(days=90)
# A version is retired before 2^32 encryptions (random 96-bit nonces, NIST SP 800-38D).
MAX_USES = 2**32 - 1
_MIN_ROTATION = dt.timedelta(hours=1)
_MAX_ROTATION = dt.timedelta(days=3650)
# Services that may call keyvault for an org without a user principal (mTLS identity).
_SERVICE_CALLERS = frozenset({"identity", "authz", "ai-broker", "audit", "gateway"})
_UNDECRYPTABLE = "the ciphertext does not decrypt in this org and context"


@dataclass(frozen=True, slots=True)
class Aad:
    """Where a value lives (table, row, column); bound with the org into every ciphertext."""

    table: str = ""
    row_id: str = ""
    column: str = ""


@dataclass(frozen=True, slots=True)
class Sealed:
    """The result of an encryption: the blob and the key version that made it."""

    blob: bytes
    key_id: uuid.UUID
    version: int


def _material_context(key_id: uuid.UUID, version: int) -> bytes:
    return f"helios-keyvault/kek/{key_id}/{version}".encode()


class KeyvaultService:
    """Use cases over the ports and the seal provider (the root of the key hierarchy)."""

    def __init__(
        self,
        uow: UnitOfWork,
        seal: SealProvider,
        clock: Callable[[], dt.datetime],
        *,
        max_uses: int = MAX_USES,
    ) -> None:
        self._uow = uow
        self._seal = seal
        self._clock = clock
        self._max_uses = max_uses

    # --- access -------------------------------------------------------------------------------

    @staticmethod
    def org_of(ctx: CallContext, requested: str) -> str:
        """The org the call acts in: a user acts in its own org only; a Helios service (by its
        mTLS identity) may name any org. Raises PermissionDeniedError otherwise."""
        if ctx.principal is not None:
            own = ctx.principal.org_id
            if not own:
                raise PermissionDeniedError("keys belong to an org: join one first")
            if requested and requested != own:
                raise PermissionDeniedError("keys of another org are out of reach")
            return own
        if ctx.caller in _SERVICE_CALLERS:
            return requested
        raise PermissionDeniedError("this caller may not use keyvault")

    async def _owned(
        self, tx: KeyTransaction, org: str, key_id: str, *, for_update: bool = False
    ) -> KeyRecord:
        try:
            parsed = uuid.UUID(key_id)
        except ValueError:
            raise InvalidArgumentError("key_id is not a UUID", field="key_id") from None
        key = await tx.key(parsed, for_update=for_update)
        if key is None or key.org_id != org:
            raise NotFoundError("no such key in this org")
        return key

    # --- key management -----------------------------------------------------------------------

    def _new_version(self, key_id: uuid.UUID, number: int, algorithm: int) -> KeyVersionRecord:
        secret = material.new_material(material.Algorithm(algorithm))
        sealed = self._seal.wrap(secret, _material_context(key_id, number))
        return KeyVersionRecord(version=number, created_at=self._clock(), sealed_material=sealed)

    async def create_key(
        self,
        ctx: CallContext,
        org_id: str,
        name: str,
        purpose: int,
        algorithm: int,
        rotation_period: dt.timedelta | None = None,
    ) -> KeyRecord:
        """A new key with version 1; encryption keys rotate quarterly unless `rotation_period`
        says otherwise. Raises InvalidArgumentError or AlreadyExistsError."""
        org = self.org_of(ctx, org_id)
        if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
            raise InvalidArgumentError(
                "name must be 1-100 letters, digits, '-' or '_'", field="name"
            )
        try:
            algo = material.Algorithm(algorithm)
        except ValueError:
            raise InvalidArgumentError("algorithm is not supported", field="algorithm") from None
        wanted = (
            material.ENCRYPTION_ALGORITHMS
            if purpose == PURPOSE_ENCRYPTION
            else material.SIGNING_ALGORITHMS
            if purpose == PURPOSE_SIGNING
            else frozenset()
        )
        if algo not in wanted:
            raise InvalidArgumentError(
                "purpose and algorithm do not go together", field="algorithm"
            )
        if rotation_period is None and purpose == PURPOSE_ENCRYPTION:
            rotation_period = DEFAULT_ROTATION
        if rotation_period is not None and not _MIN_ROTATION <= rotation_period <= _MAX_ROTATION:
            raise InvalidArgumentError(
                "rotation_period must be between 1 hour and 10 years", field="rotation_period"
            )
        now = self._clock()
        key_id = uuid.uuid4()
        key = KeyRecord(
            id=key_id,
            org_id=org,
            name=name,
            purpose=purpose,
            algorithm=algo,
            current_version=1,
            min_decryption_version=1,
            created_at=now,
            rotation_period=rotation_period,
            next_rotation_at=now + rotation_period if rotation_period else None,
            versions=[self._new_version(key_id, 1, algo)],
        )
        async with self._uow() as tx:
            await tx.add_key(key)
            await tx.record(self._change("keyvault.key.create", key, {"name": name}), ctx)
        return key

    async def get_key(self, ctx: CallContext, org_id: str, key_id: str) -> KeyRecord:
        """The key's metadata (never material)."""
        org = self.org_of(ctx, org_id)
        async with self._uow() as tx:
            return await self._owned(tx, org, key_id)

    async def list_keys(
        self, ctx: CallContext, org_id: str, purpose: int, include_destroyed: bool
    ) -> list[KeyRecord]:
        """The org's keys."""
        org = self.org_of(ctx, org_id)
        async with self._uow() as tx:
            return await tx.keys(org, purpose, include_destroyed)

    async def rotate_key(self, ctx: CallContext, org_id: str, key_id: str) -> KeyRecord:
        """Add a version and make it current; older versions keep decrypting."""
        org = self.org_of(ctx, org_id)
        async with self._uow() as tx:
            key = self._usable(await self._owned(tx, org, key_id, for_update=True))
            await self._rotate(tx, key, ctx, "requested")
            return await self._owned(tx, org, key_id)

    async def _rotate(
        self, tx: KeyTransaction, key: KeyRecord, ctx: CallContext, reason: str
    ) -> int:
        """Add the next version to a key locked by the caller's transaction; audited."""
        now = self._clock()
        version = self._new_version(key.id, key.current_version + 1, key.algorithm)
        following = now + key.rotation_period if key.rotation_period else None
        await tx.add_version(key.id, version, following)
        await tx.record(
            self._change(
                "keyvault.key.rotate", key, {"new_version": version.version, "reason": reason}
            ),
            ctx,
        )
        key.current_version = version.version
        key.versions.append(version)
        return version.version

    async def rotate_due(self, ctx: CallContext, batch: int = 100) -> int:
        """Rotate every key whose scheduled rotation is due (any replica may run this: due keys
        are locked with SKIP LOCKED); returns how many were rotated."""
        async with self._uow() as tx:
            due = await tx.due_for_rotation(self._clock(), batch)
            for key_id in due:
                key = await tx.key(key_id, for_update=True)
                if key is not None and key.destroyed_at is None:
                    await self._rotate(tx, key, ctx, "scheduled")
        return len(due)

    async def set_min_decryption_version(
        self, ctx: CallContext, org_id: str, key_id: str, version: int
    ) -> KeyRecord:
        """Refuse versions below `version`; allowed only when no live ciphertext or data key
        depends on them (see KeyInventory), so nothing is locked out by surprise."""
        org = self.org_of(ctx, org_id)
        async with self._uow() as tx:
            key = self._usable(await self._owned(tx, org, key_id, for_update=True))
            if not key.min_decryption_version <= version <= key.current_version:
                raise InvalidArgumentError(
                    f"min_decryption_version must be between {key.min_decryption_version} "
                    f"and {key.current_version}",
                    field="min_decryption_version",
                )
            still = [
                v.version
                for v in key.versions
                if v.version < version and (v.live_ciphertexts or v.live_data_keys)
            ]
            if still:
                raise FailedPreconditionError(
                    f"versions {still} still protect live data: rewrap it first"
                )
            await tx.set_min_decryption_version(key.id, version)
            await tx.record(
                self._change("keyvault.key.setMinDecryptionVersion", key, {"version": version}),
                ctx,
            )
            return await self._owned(tx, org, key_id)

    async def destroy(
        self, ctx: CallContext, org_id: str, key_id: str, version: int | None
    ) -> KeyRecord:
        """Erase the material of one version (not the current one) or of the whole key: what it
        protected can never be decrypted again (crypto-shredding)."""
        org = self.org_of(ctx, org_id)
        async with self._uow() as tx:
            key = self._usable(await self._owned(tx, org, key_id, for_update=True))
            if version is None:
                targets = [v.version for v in key.versions]
            elif key.version(version) is None:
                raise NotFoundError("no such key version")
            elif version == key.current_version:
                raise FailedPreconditionError("rotate before destroying the current version")
            else:
                targets = [version]
            await tx.destroy_versions(key.id, targets, self._clock(), whole_key=version is None)
            action = "keyvault.key.destroy" if version is None else "keyvault.keyVersion.destroy"
            await tx.record(self._change(action, key, {"versions": targets}), ctx)
            return await self._owned(tx, org, key_id)

    # --- cryptography -------------------------------------------------------------------------

    def _usable(self, key: KeyRecord) -> KeyRecord:
        if key.destroyed_at is not None:
            raise FailedPreconditionError("the key is destroyed")
        return key

    def _material(self, key: KeyRecord, number: int) -> bytes:
        version = key.version(number)
        if version is None or version.sealed_material is None:
            raise FailedPreconditionError(f"key version {number} is destroyed")
        return self._seal.unwrap(version.sealed_material, _material_context(key.id, number))

    async def encrypt(
        self,
        ctx: CallContext,
        org_id: str,
        key_id: str,
        plaintext: bytes,
        aad: Aad,
        *,
        kind: Kind = Kind.CIPHERTEXT,
    ) -> Sealed:
        """Seal `plaintext` under the key's current version, bound to org and `aad`."""
        org = self.org_of(ctx, org_id)
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise InvalidArgumentError(
                f"plaintext over {MAX_PLAINTEXT_BYTES} bytes: use a data key", field="plaintext"
            )
        async with self._uow() as tx:
            key = self._usable(await self._owned(tx, org, key_id))
            if key.purpose != PURPOSE_ENCRYPTION:
                raise FailedPreconditionError("the key is not an encryption key")
            current = key.version(key.current_version)
            if current is not None and current.use_count + 1 >= self._max_uses:
                key = self._usable(await self._owned(tx, org, key_id, for_update=True))
                current = key.version(key.current_version)
                if current is not None and current.use_count + 1 >= self._max_uses:
                    await self._rotate(tx, key, ctx, "use limit")
            version = key.current_version
            blob = ciphertext.seal(
                self._material(key, version),
                kind,
                key.id,
                version,
                plaintext,
                ciphertext.context_aad(org, aad.table, aad.row_id, aad.column),
            )
            await tx.count_use(key.id, version, data_key=kind is Kind.DATA_KEY)
        return Sealed(blob=blob, key_id=key.id, version=version)

    async def generate_data_key(
        self, ctx: CallContext, org_id: str, key_id: str, aad: Aad
    ) -> tuple[bytes, Sealed]:
        """A fresh 256-bit data key and its copy sealed by the key (KMS GenerateDataKey)."""
        data_key = os.urandom(32)
        sealed = await self.encrypt(ctx, org_id, key_id, data_key, aad, kind=Kind.DATA_KEY)
        return data_key, sealed

    async def decrypt(
        self, ctx: CallContext, org_id: str, blob: bytes, aad: Aad, *, kind: Kind
    ) -> Sealed:
        """The plaintext (in `blob` of the result) of a ciphertext of this org and context;
        raises CiphertextError for anything else (never a partial plaintext)."""
        org = self.org_of(ctx, org_id)
        header = ciphertext.read_header(blob)
        if header.kind is not kind:
            raise CiphertextError(_UNDECRYPTABLE)
        async with self._uow() as tx:
            key = await tx.key(header.key_id)
        if key is None or key.org_id != org:
            raise CiphertextError(_UNDECRYPTABLE)
        self._usable(key)
        if header.version < key.min_decryption_version:
            raise FailedPreconditionError(
                f"key version {header.version} is below the minimum decryption version"
            )
        plaintext = ciphertext.open_sealed(
            self._material(key, header.version),
            blob,
            ciphertext.context_aad(org, aad.table, aad.row_id, aad.column),
        )
        return Sealed(blob=plaintext, key_id=key.id, version=header.version)

    async def rewrap(
        self, ctx: CallContext, org_id: str, blob: bytes, aad: Aad
    ) -> tuple[Sealed, int]:
        """Re-seal a ciphertext (or data key) under the key's current version; no plaintext
        leaves keyvault. Returns the new blob and the version it came from."""
        org = self.org_of(ctx, org_id)
        header = ciphertext.read_header(blob)
        opened = await self.decrypt(ctx, org_id, blob, aad, kind=header.kind)
        context = ciphertext.context_aad(org, aad.table, aad.row_id, aad.column)
        async with self._uow() as tx:
            key = self._usable(await self._owned(tx, org, str(header.key_id)))
            target = key.current_version
            new_blob = ciphertext.seal(
                self._material(key, target), header.kind, key.id, target, opened.blob, context
            )
            if target != header.version:
                await tx.move_live(
                    key.id, header.version, target, data_key=header.kind is Kind.DATA_KEY
                )
        return Sealed(blob=new_blob, key_id=key.id, version=target), header.version

    async def sign(
        self,
        ctx: CallContext,
        org_id: str,
        key_id: str,
        version: int,
        message: bytes,
        *,
        prehashed: bool = False,
    ) -> tuple[bytes, KeyRecord, int]:
        """A signature of `message` (or of a SHA-256 digest when `prehashed`) with the current
        (or given, still enabled) version."""
        org = self.org_of(ctx, org_id)
        async with self._uow() as tx:
            key = self._usable(await self._owned(tx, org, key_id))
        if key.purpose != PURPOSE_SIGNING:
            raise FailedPreconditionError("the key is not a signing key")
        number = version or key.current_version
        if number < key.min_decryption_version:
            raise FailedPreconditionError(f"key version {number} is disabled")
        algorithm = material.Algorithm(key.algorithm)
        secret = self._material(key, number)
        if not prehashed:
            return material.sign(algorithm, secret, message), key, number
        try:
            return material.sign_digest(algorithm, secret, message), key, number
        except ValueError as exc:
            raise InvalidArgumentError(str(exc), field="digest_sha256") from None

    async def public_keys(
        self, ctx: CallContext, org_id: str, key_id: str, version: int
    ) -> list[dict[str, str]]:
        """JWKs of the key's enabled versions (or of one version), `kid` = `<key id>:<version>`."""
        org = self.org_of(ctx, org_id)
        async with self._uow() as tx:
            key = self._usable(await self._owned(tx, org, key_id))
        if key.purpose != PURPOSE_SIGNING:
            raise FailedPreconditionError("the key is not a signing key")
        numbers = [version] if version else [v.version for v in key.versions]
        algorithm = material.Algorithm(key.algorithm)
        return [
            material.public_jwk(algorithm, self._material(key, n), f"{key.id}:{n}")
            for n in numbers
            if n >= key.min_decryption_version and (v := key.version(n)) and v.sealed_material
        ]

    def _change(self, action: str, key: KeyRecord, diff: dict[str, object]) -> Change:
        return Change(
            action=action,
            resource_type="keyvault.key",
            resource_id=str(key.id),
            org_id=key.org_id,
            diff=diff,
        )
