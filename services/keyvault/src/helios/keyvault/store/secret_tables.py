"""The `keyvault.secrets` table: platform secrets, one row per version, values sealed by the root.

Registered on keyvault's shared `metadata`, so importing this module completes `tables.metadata`.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Integer, LargeBinary, String, Table

from helios.keyvault.store.tables import metadata

__all__ = ["secrets"]

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    # nonce || AES-256-GCM(value) under the root seal, context helios-keyvault/secret/<name>/<v>.
    Column("sealed_value", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("version >= 1", name="secrets_version_positive"),
    CheckConstraint(
        "name ~ '^[a-z0-9][a-z0-9._/-]{0,199}$' AND strpos(name, '..') = 0",
        name="secrets_name_valid",
    ),
)
