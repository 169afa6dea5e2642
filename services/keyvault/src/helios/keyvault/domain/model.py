"""Keys and key versions as the use cases see them (metadata plus sealed material)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

__all__ = ["PURPOSE_ENCRYPTION", "PURPOSE_SIGNING", "KeyRecord", "KeyVersionRecord"]

PURPOSE_ENCRYPTION = 1
PURPOSE_SIGNING = 2


@dataclass(slots=True)
class KeyVersionRecord:
    """One version; `sealed_material` is None once destroyed (crypto-shredded)."""

    version: int
    created_at: dt.datetime
    sealed_material: bytes | None
    destroyed_at: dt.datetime | None = None
    use_count: int = 0
    live_ciphertexts: int = 0
    live_data_keys: int = 0


@dataclass(slots=True)
class KeyRecord:
    """A key of one org ('' for a platform key) with its versions, oldest first."""

    id: uuid.UUID
    org_id: str
    name: str
    purpose: int
    algorithm: int
    current_version: int
    min_decryption_version: int
    created_at: dt.datetime
    destroyed_at: dt.datetime | None = None
    rotation_period: dt.timedelta | None = None
    next_rotation_at: dt.datetime | None = None
    versions: list[KeyVersionRecord] = field(default_factory=list)

    def version(self, number: int) -> KeyVersionRecord | None:
        """The version with this number, or None."""
        return next((v for v in self.versions if v.version == number), None)
