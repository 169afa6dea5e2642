"""The root of the key hierarchy: seal providers that wrap the KEK material stored in the database.

`LocalSeal` holds a 32-byte root key, read from a key file (created 0600 on first start) or derived
from a passphrase with argon2id. Its blobs are `nonce (12 random bytes) || AES-256-GCM(secret)`
with the caller's `context` as associated data. The argon2id parameters and the salt file are part
of the derivation: changing either makes the passphrase stop opening the keyvault, which the check
file reports at start-up. Errors never carry key bytes or the passphrase.
"""

from __future__ import annotations

import os
import stat
import unicodedata
from pathlib import Path

from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["LocalSeal", "SealError"]

ROOT_KEY_SIZE = 32
SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
SALT_FILE = "seal.salt"
CHECK_FILE = "seal.check"
_CHECK_LABEL = b"helios keyvault seal check v1"
_CHECK_CONTEXT = b"helios.keyvault.seal.check"
_SEAL_CHECK_FAILED = "the passphrase does not open this keyvault (seal check failed)"


class SealError(Exception):
    """The seal cannot be opened or cannot unwrap; the message is for operators, never a secret."""


class LocalSeal:
    """A root key held in process memory, from a key file or a passphrase (provider `local`)."""

    __slots__ = ("_aead",)

    name = "local"

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) != ROOT_KEY_SIZE:
            raise ValueError("the root key must be 32 bytes")
        self._aead = AESGCM(root_key)

    def __repr__(self) -> str:
        return "LocalSeal()"

    @classmethod
    def from_key_file(cls, path: Path) -> LocalSeal:
        """Use the root key in `path`, creating it (32 random bytes, mode 0600) if it is missing.

        Refuses (SealError) a file that is not a regular file, is not 32 bytes, or that group or
        others may access.
        """
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private_file(path, os.urandom(ROOT_KEY_SIZE))
        return cls(_read_file(path, ROOT_KEY_SIZE, "seal key file", private=True))

    @classmethod
    def from_passphrase(
        cls,
        passphrase: str,
        state_dir: Path,
        *,
        time_cost: int = 3,
        memory_kib: int = 65536,
        parallelism: int = 4,
    ) -> LocalSeal:
        """Derive the root key with argon2id from `passphrase` (NFC) and the salt in `state_dir`.

        On first use creates `seal.salt` (16 random bytes) and `seal.check` (the check label wrapped
        under the root key), both 0600. Later starts with another passphrase (or other argon2id
        parameters) fail at once with SealError.
        """
        if not passphrase:
            raise SealError("the seal passphrase is empty")
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        salt_path = state_dir / SALT_FILE
        check_path = state_dir / CHECK_FILE
        if not salt_path.exists():
            if check_path.exists():
                raise SealError(
                    f"{salt_path} is missing but {check_path} exists: restore the salt file"
                )
            _create_private_file(salt_path, os.urandom(SALT_SIZE))
        salt = _read_file(salt_path, SALT_SIZE, "seal salt file", private=False)
        try:
            root_key = hash_secret_raw(
                secret=unicodedata.normalize("NFC", passphrase).encode("utf-8"),
                salt=salt,
                time_cost=time_cost,
                memory_cost=memory_kib,
                parallelism=parallelism,
                hash_len=ROOT_KEY_SIZE,
                type=Type.ID,
            )
        except HashingError as exc:
            raise SealError(f"argon2id parameters are not usable: {exc}") from None
        seal = cls(root_key)
        check_size = NONCE_SIZE + len(_CHECK_LABEL) + TAG_SIZE
        if not check_path.exists():
            _create_private_file(check_path, seal.wrap(_CHECK_LABEL, _CHECK_CONTEXT))
        check = _read_file(check_path, check_size, "seal check file", private=False)
        try:
            opened = seal.unwrap(check, _CHECK_CONTEXT)
        except SealError:
            raise SealError(_SEAL_CHECK_FAILED) from None
        if opened != _CHECK_LABEL:
            raise SealError(_SEAL_CHECK_FAILED)
        return seal

    def wrap(self, secret: bytes, context: bytes) -> bytes:
        """AES-256-GCM under the root key: nonce || ciphertext || tag, `context` authenticated."""
        nonce = os.urandom(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, secret, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Open a `wrap` blob; SealError for another root key or context, or an altered blob."""
        if len(blob) < NONCE_SIZE + TAG_SIZE:
            raise SealError("the sealed value is too short")
        try:
            return self._aead.decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], context)
        except InvalidTag:
            raise SealError(
                "the seal cannot unwrap this value (another root key or context, or it was altered)"
            ) from None


def _create_private_file(path: Path, data: bytes) -> None:
    """Create `path` exclusively (mode 0600) holding `data`; if it exists already (another process
    won the race), leave it: the caller then reads and validates what is there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _read_file(path: Path, size: int, what: str, *, private: bool) -> bytes:
    """Read a regular file of exactly `size` bytes; with `private`, refuse group/other access."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SealError(f"cannot open the {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SealError(f"the {what} {path} is not a regular file")
        if private and info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise SealError(
                f"the {what} {path} has mode {mode:04o}; group and others must have no access "
                "(chmod 600)"
            )
        if info.st_size != size:
            raise SealError(f"the {what} {path} has {info.st_size} bytes; expected {size}")
        data = b""
        while len(data) < size:
            chunk = os.read(fd, size - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if len(data) != size:
        raise SealError(f"the {what} {path} changed while it was read")
    return data
