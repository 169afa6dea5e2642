"""Seal provider `vault`: HashiCorp Vault's transit engine (through hvac) wraps the root key.

This is Vault's own auto-unseal pattern applied to keyvault. On first start a 32-byte root key is
generated here, encrypted by Vault transit (`POST /v1/<mount>/encrypt/<transit_key>`) and only its
ciphertext (`vault:v<N>:<base64>`, text) is written to `state_dir/root.key.vault`, created 0600.
Every start decrypts that file through Vault (`POST /v1/<mount>/decrypt/<transit_key>`) and then
wraps and unwraps exactly like `LocalSeal` (AES-256-GCM under the root key, the caller's context as
associated data), so Vault is needed at start-up only and the KEK blobs of both providers have the
same form. Keyvault never sees Vault's transit key; Vault never sees the KEKs.

The token needs `update` on `<mount>/encrypt/<transit_key>` and `<mount>/decrypt/<transit_key>`
only. Do not grant `create` there: Vault then upserts a missing key on encrypt, so a misspelt key
name would silently create a new transit key instead of failing.

Errors are SealError with a message for operators: Vault unreachable (or TLS verification failed),
permission denied, unknown transit key or mount, a root-key file Vault cannot decrypt. They never
carry the token or key bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hvac
import hvac.exceptions
import requests

from helios.keyvault.seal import ROOT_KEY_SIZE, LocalSeal, SealError, _create_private_file

__all__ = ["STATE_FILE", "VaultTransitSeal"]

STATE_FILE = "root.key.vault"
_MAX_STATE_SIZE = 64 * 1024  # a transit ciphertext of 32 bytes is ~90 characters
_KEY_NOT_FOUND = "encryption key not found"


class VaultTransitSeal:
    """A root key unsealed by Vault transit at start-up and held in process memory."""

    __slots__ = ("_seal",)

    name = "vault"

    def __init__(self, root_key: bytes) -> None:
        self._seal = LocalSeal(root_key)

    def __repr__(self) -> str:
        return "VaultTransitSeal()"

    @classmethod
    def open(
        cls,
        url: str,
        token: str,
        transit_key: str,
        state_dir: Path,
        *,
        mount_point: str = "transit",
        ca_file: Path | None = None,
        timeout: float = 10,
    ) -> VaultTransitSeal:
        """Decrypt the root key in `state_dir/root.key.vault` through Vault transit, first
        generating it and storing its transit ciphertext (mode 0600) if the file is missing.

        Raises SealError when Vault cannot be reached or refuses, or the file is not usable.
        """
        if not token:
            raise SealError("the Vault token is empty")
        if not transit_key:
            raise SealError("the Vault transit key name is empty")
        if ca_file is not None and not ca_file.is_file():
            raise SealError(f"the Vault CA file {ca_file} does not exist")
        vault = _Transit(url, token, transit_key, mount_point, ca_file, timeout)
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = state_dir / STATE_FILE
            if not path.exists():
                root_key = os.urandom(ROOT_KEY_SIZE)
                ciphertext = vault.encrypt(root_key)
                # If another process created the file meanwhile, its key wins: read it back below.
                _create_private_file(path, ciphertext.encode("ascii") + b"\n")
            root_key = vault.decrypt(_read_state(path), path)
        finally:
            vault.close()
        if len(root_key) != ROOT_KEY_SIZE:
            raise SealError(
                f"Vault decrypted {path} to {len(root_key)} bytes; a root key has {ROOT_KEY_SIZE}"
            )
        return cls(root_key)

    def wrap(self, secret: bytes, context: bytes) -> bytes:
        """AES-256-GCM under the root key: nonce || ciphertext || tag, `context` authenticated."""
        return self._seal.wrap(secret, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Open a `wrap` blob; SealError for another root key or context, or an altered blob."""
        return self._seal.unwrap(blob, context)


class _Transit:
    """The two transit calls keyvault makes, with Vault's failures turned into SealError."""

    def __init__(
        self,
        url: str,
        token: str,
        key: str,
        mount: str,
        ca_file: Path | None,
        timeout: float,
    ) -> None:
        self._token = token
        self._key = key
        self._mount = mount.strip("/")
        self._where = _safe_address(url)
        self._client = hvac.Client(
            url=url,
            token=token,
            verify=str(ca_file) if ca_file is not None else True,
            # requests takes float seconds; the hvac stub says int.
            timeout=timeout,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self._client.adapter.close()

    def encrypt(self, plaintext: bytes) -> str:
        reply = self._call(
            "encrypt",
            lambda: self._client.secrets.transit.encrypt_data(
                self._key,
                plaintext=base64.b64encode(plaintext).decode("ascii"),
                mount_point=self._mount,
            ),
            not_decryptable=None,
        )
        ciphertext = reply.get("ciphertext")
        if not isinstance(ciphertext, str) or not ciphertext.startswith("vault:v"):
            raise SealError(f"Vault at {self._where} returned no transit ciphertext")
        return ciphertext

    def decrypt(self, ciphertext: str, path: Path) -> bytes:
        reply = self._call(
            "decrypt",
            lambda: self._client.secrets.transit.decrypt_data(
                self._key, ciphertext=ciphertext, mount_point=self._mount
            ),
            not_decryptable=path,
        )
        plaintext = reply.get("plaintext")
        if not isinstance(plaintext, str):
            raise SealError(f"Vault at {self._where} returned no plaintext for {path}")
        try:
            return base64.b64decode(plaintext, validate=True)
        except binascii.Error:
            raise SealError(
                f"Vault at {self._where} returned a plaintext that is not base64"
            ) from None

    def _call(
        self, operation: str, call: Callable[[], Any], *, not_decryptable: Path | None
    ) -> dict[str, Any]:
        """Run one transit call; `not_decryptable` names the state file a 400 is about."""
        target = f"transit key '{self._key}' at mount '{self._mount}' of Vault at {self._where}"
        try:
            reply = call()
        except requests.exceptions.SSLError:
            raise SealError(
                f"cannot verify the TLS certificate of Vault at {self._where} "
                "(check the Vault CA file)"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise SealError(
                f"Vault at {self._where} is unreachable ({type(exc).__name__}); "
                "keyvault needs it to unseal its root key at start-up"
            ) from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            raise SealError(
                f"Vault denied permission to {operation} with the {target} "
                f"({self._errors(exc)}): check the token and that its policy grants "
                f"update on {self._mount}/{operation}/{self._key}"
            ) from None
        except hvac.exceptions.InvalidRequest as exc:
            errors = self._errors(exc)
            if _KEY_NOT_FOUND in errors:
                raise SealError(f"Vault has no {target} ({errors})") from None
            if not_decryptable is not None:
                raise SealError(
                    f"the {target} cannot decrypt the root key in {not_decryptable} "
                    f"(another transit key, or the file was altered): {errors}"
                ) from None
            raise SealError(f"Vault refused to {operation} with the {target}: {errors}") from None
        except hvac.exceptions.InvalidPath as exc:
            raise SealError(
                f"Vault has no transit engine at mount '{self._mount}' ({self._errors(exc)})"
            ) from None
        except (hvac.exceptions.VaultDown, hvac.exceptions.VaultNotInitialized) as exc:
            raise SealError(
                f"Vault at {self._where} is sealed, down or not initialised ({self._errors(exc)})"
            ) from None
        except hvac.exceptions.VaultError as exc:
            raise SealError(
                f"Vault failed to {operation} with the {target}: "
                f"{type(exc).__name__} ({self._errors(exc)})"
            ) from None
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, dict):
            raise SealError(f"Vault at {self._where} gave a {operation} answer without data")
        return data

    def _errors(self, exc: hvac.exceptions.VaultError) -> str:
        """Vault's error strings, shortened, with the token masked should Vault ever echo it."""
        raw: Iterable[str] | str | None = exc.errors
        text = raw if isinstance(raw, str) else "; ".join(str(e) for e in raw or ())
        text = (text or "no detail").replace(self._token, "***")
        return text[:300]


def _safe_address(url: str) -> str:
    """scheme://host:port of `url`, without any user info, path or query."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise SealError("the Vault address must look like https://vault.example:8200")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:
        raise SealError("the Vault address has an invalid port") from None
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _read_state(path: Path) -> str:
    """The transit ciphertext in `path`: a private regular file holding `vault:v<N>:...`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SealError(f"cannot open the Vault root key file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SealError(f"the Vault root key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise SealError(
                f"the Vault root key file {path} has mode {stat.S_IMODE(info.st_mode):04o}; "
                "group and others must have no access (chmod 600)"
            )
        if info.st_size > _MAX_STATE_SIZE:
            raise SealError(f"the Vault root key file {path} is too large to be a ciphertext")
        data = b""
        while chunk := os.read(fd, _MAX_STATE_SIZE + 1 - len(data)):
            data += chunk
            if len(data) > _MAX_STATE_SIZE:
                raise SealError(f"the Vault root key file {path} grew while it was read")
    finally:
        os.close(fd)
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if not text.startswith("vault:v") or text.count(":") != 2:
        raise SealError(f"the Vault root key file {path} does not hold a transit ciphertext")
    return text
