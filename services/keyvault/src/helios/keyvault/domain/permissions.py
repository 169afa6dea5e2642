"""Keyvault's permission catalog, declared in code and registered with authz at start (Z2)."""

from __future__ import annotations

from helios.proto.authz.v1 import authz_pb2

__all__ = ["KEYVAULT_PERMISSIONS"]

_ANY = (authz_pb2.SCOPE_ANY,)

# key: (one-line description, dangerous by default). Keys, secrets and attachments belong to the
# org, not to a person or a team, so every grant is org-wide (`any`).
_DECLARED: dict[str, tuple[str, bool]] = {
    "keyvault.key.create": ("Create keys", False),
    "keyvault.key.read": ("See a key and its versions (never key material)", False),
    "keyvault.key.list": ("List the organization's keys", False),
    "keyvault.key.encrypt": ("Encrypt data under a key", False),
    "keyvault.key.decrypt": ("Decrypt data encrypted under a key", False),
    "keyvault.key.rewrap": ("Re-encrypt data under a key's current version", False),
    "keyvault.key.rotate": ("Rotate keys to a new version", False),
    "keyvault.key.update": ("Refuse decryption below a key version", False),
    "keyvault.key.sign": ("Sign data with a signing key", False),
    "keyvault.key.inventory": ("See what still depends on each key version", False),
    "keyvault.key.destroy": (
        "Destroy a key for good, making everything encrypted under it unreadable",
        True,
    ),
    "keyvault.keyVersion.destroy": (
        "Destroy a key version for good, making its ciphertexts unreadable",
        True,
    ),
    "keyvault.dataKey.generate": ("Generate data keys wrapped under a key", False),
    "keyvault.dataKey.decrypt": ("Unwrap data keys", False),
    "keyvault.publicKey.read": ("See the public half of signing keys", False),
    "keyvault.secret.write": ("Store platform secrets", False),
    "keyvault.secret.read": ("Read platform secrets", False),
    "keyvault.secret.list": ("List platform secrets by name and version, never values", False),
    "keyvault.attachment.put": ("Store encrypted attachments", False),
    "keyvault.attachment.get": ("Read attachments back", False),
    "keyvault.attachment.delete": ("Delete attachments", True),
}

KEYVAULT_PERMISSIONS: tuple[authz_pb2.PermissionDefinition, ...] = tuple(
    authz_pb2.PermissionDefinition(
        key=key, description=text, dangerous=dangerous, allowed_scopes=_ANY
    )
    for key, (text, dangerous) in sorted(_DECLARED.items())
)
"""Every permission keyvault's RPCs require, with the flags its proto options declare."""
