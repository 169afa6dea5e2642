"""Conversion between keyvault's records and its protos (metadata only, never material)."""

from __future__ import annotations

from helios.keyvault.domain.model import KeyRecord, KeyVersionRecord
from helios.keyvault.service import Aad
from helios.proto.keyvault.v1 import keyvault_pb2

__all__ = ["aad_from_proto", "inventory_to_proto", "jwk_to_proto", "key_to_proto"]


def aad_from_proto(context: keyvault_pb2.AadContext) -> Aad:
    """The AAD context of a request."""
    return Aad(table=context.table, row_id=context.row_id, column=context.column)


def _state(key: KeyRecord, version: KeyVersionRecord) -> keyvault_pb2.KeyVersionState.ValueType:
    if version.sealed_material is None:
        return keyvault_pb2.KEY_VERSION_STATE_DESTROYED
    if version.version == key.current_version:
        return keyvault_pb2.KEY_VERSION_STATE_CURRENT
    if version.version < key.min_decryption_version:
        return keyvault_pb2.KEY_VERSION_STATE_DISABLED
    return keyvault_pb2.KEY_VERSION_STATE_ENABLED


def key_to_proto(key: KeyRecord) -> keyvault_pb2.Key:
    """A key's metadata with its versions, newest first."""
    message = keyvault_pb2.Key(
        key_id=str(key.id),
        org_id=key.org_id,
        name=key.name,
        purpose=key.purpose,  # type: ignore[arg-type]
        algorithm=key.algorithm,  # type: ignore[arg-type]
        state=(
            keyvault_pb2.KEY_STATE_DESTROYED
            if key.destroyed_at is not None
            else keyvault_pb2.KEY_STATE_ENABLED
        ),
        current_version=key.current_version,
        min_decryption_version=key.min_decryption_version,
    )
    message.create_time.FromDatetime(key.created_at)
    if key.rotation_period is not None:
        message.rotation_period.FromTimedelta(key.rotation_period)
    if key.next_rotation_at is not None:
        message.next_rotation_time.FromDatetime(key.next_rotation_at)
    if key.destroyed_at is not None:
        message.destroy_time.FromDatetime(key.destroyed_at)
    for version in reversed(key.versions):
        item = message.versions.add(
            version=version.version, state=_state(key, version), use_count=version.use_count
        )
        item.create_time.FromDatetime(version.created_at)
        if version.destroyed_at is not None:
            item.destroy_time.FromDatetime(version.destroyed_at)
    return message


def inventory_to_proto(key: KeyRecord) -> list[keyvault_pb2.KeyVersionInventory]:
    """What still depends on each version, oldest first."""
    return [
        keyvault_pb2.KeyVersionInventory(
            version=v.version,
            state=_state(key, v),
            live_data_keys=v.live_data_keys,
            live_ciphertexts=v.live_ciphertexts,
            use_count=v.use_count,
        )
        for v in key.versions
    ]


def jwk_to_proto(jwk: dict[str, str]) -> keyvault_pb2.Jwk:
    """A JWK dict as the proto (unknown members dropped)."""
    fields = keyvault_pb2.Jwk.DESCRIPTOR.fields_by_name
    return keyvault_pb2.Jwk(**{k: v for k, v in jwk.items() if k in fields})
