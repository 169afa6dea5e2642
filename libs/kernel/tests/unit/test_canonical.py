"""Canonical JSON and input/output hashes of audit rows: secret fields never enter them (L1)."""

from __future__ import annotations

import hashlib
import json

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from helios.kernel.canonical import canonical_hash, public_dict, secret_field_names
from helios.proto.identity.v1 import identity_pb2
from helios.proto.keyvault.v1 import keyvault_pb2
from helios.proto.options.v1 import options_pb2

pytestmark = pytest.mark.unit

_NESTED_FILE = "helios_unit_test/canonical_nested.proto"
_PACKAGE = "helios_unit_test.canonical"


def _nested_types() -> tuple[type[Message], type[Message]]:
    """(Outer, Inner) where Inner has a secret field and Outer embeds Inner singly and repeated;
    built at run time because no shipped proto nests a secret field today."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_NESTED_FILE)
    except KeyError:
        proto = descriptor_pb2.FileDescriptorProto(
            name=_NESTED_FILE,
            package=_PACKAGE,
            syntax="proto3",
            dependency=["helios/proto/options/v1/options.proto"],
        )
        inner = proto.message_type.add(name="Inner")
        secret = inner.field.add(name="api_secret", number=1, type=9, label=1)
        secret.options.Extensions[options_pb2.secret] = True
        inner.field.add(name="label", number=2, type=9, label=1)
        outer = proto.message_type.add(name="Outer")
        outer.field.add(name="inner", number=1, type=11, label=1, type_name=f".{_PACKAGE}.Inner")
        outer.field.add(name="items", number=2, type=11, label=3, type_name=f".{_PACKAGE}.Inner")
        pool.AddSerializedFile(proto.SerializeToString())
    outer_type = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Outer"))
    inner_type = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Inner"))
    return outer_type, inner_type


def test_l1_input_hash_omits_secret_fields() -> None:
    first = identity_pb2.SignInRequest(email="ada@example.com", password="correct horse battery")
    second = identity_pb2.SignInRequest(email="ada@example.com", password="another guess 123")
    without = identity_pb2.SignInRequest(email="ada@example.com")
    assert canonical_hash(first) == canonical_hash(second) == canonical_hash(without)


def test_l1_input_hash_differs_when_a_public_field_differs() -> None:
    first = identity_pb2.SignInRequest(email="ada@example.com", password="same password")
    second = identity_pb2.SignInRequest(email="bob@example.com", password="same password")
    assert canonical_hash(first) != canonical_hash(second)


def test_l1_hash_is_sha256_of_sorted_compact_json_of_public_fields() -> None:
    request = identity_pb2.SignUpRequest(
        email="ada@example.com", password="s3cret-password", display_name="Ada Lovelace"
    )
    expected_text = '{"display_name":"Ada Lovelace","email":"ada@example.com"}'
    assert canonical_hash(request) == hashlib.sha256(expected_text.encode()).hexdigest()


def test_l1_hash_keeps_non_ascii_text_verbatim() -> None:
    request = identity_pb2.SignUpRequest(email="zoe@example.com", display_name="Zoë")
    expected_text = '{"display_name":"Zoë","email":"zoe@example.com"}'
    assert canonical_hash(request) == hashlib.sha256(expected_text.encode()).hexdigest()


def test_l1_output_hash_omits_session_token_but_keeps_session() -> None:
    response = identity_pb2.SignInResponse(
        session_token="hls_" + "A" * 43,
        session=identity_pb2.Session(session_id="s-1", ip="203.0.113.7"),
    )
    public = public_dict(response)
    assert public == {"session": {"session_id": "s-1", "ip": "203.0.113.7"}}
    other = identity_pb2.SignInResponse(
        session_token="hls_" + "B" * 43,
        session=identity_pb2.Session(session_id="s-1", ip="203.0.113.7"),
    )
    assert canonical_hash(response) == canonical_hash(other)


def test_l1_repeated_secret_field_is_dropped() -> None:
    response = identity_pb2.ConfirmTotpResponse(backup_codes=["aaaa-bbbb", "cccc-dddd"])
    assert public_dict(response) == {}
    assert "aaaa-bbbb" not in json.dumps(public_dict(response))


def test_l1_bytes_secret_dropped_and_sibling_message_kept() -> None:
    request = keyvault_pb2.EncryptRequest(
        org_id="org-1",
        key_id="row-secrets",
        plaintext=b"top secret payload",
        context=keyvault_pb2.AadContext(table="users", row_id="u-1", column="ssn"),
    )
    assert public_dict(request) == {
        "org_id": "org-1",
        "key_id": "row-secrets",
        "context": {"table": "users", "row_id": "u-1", "column": "ssn"},
    }


def test_l1_secret_fields_stripped_at_any_depth() -> None:
    outer_type, inner_type = _nested_types()
    message = outer_type(
        inner=inner_type(api_secret="deep-secret-1", label="one"),
        items=[inner_type(api_secret="deep-secret-2", label="two")],
    )
    public = public_dict(message)
    assert public == {"inner": {"label": "one"}, "items": [{"label": "two"}]}
    changed = outer_type(
        inner=inner_type(api_secret="other", label="one"),
        items=[inner_type(api_secret="other", label="two")],
    )
    assert canonical_hash(message) == canonical_hash(changed)
    relabelled = outer_type(inner=inner_type(api_secret="deep-secret-1", label="ONE"))
    assert canonical_hash(message) != canonical_hash(relabelled)


def test_l1_secret_field_names_uses_json_names() -> None:
    assert secret_field_names(identity_pb2.SignUpRequest.DESCRIPTOR) == frozenset({"password"})
    assert secret_field_names(identity_pb2.ChangePasswordRequest.DESCRIPTOR) == frozenset(
        {"currentPassword", "newPassword"}
    )
    assert secret_field_names(identity_pb2.User.DESCRIPTOR) == frozenset()


def test_l1_hash_of_empty_message_is_hash_of_empty_object() -> None:
    assert canonical_hash(identity_pb2.SignOutRequest()) == hashlib.sha256(b"{}").hexdigest()
