"""API key rules (Z1): the key format, hashing of the secret, permission lists and lifetimes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid

import pytest

from helios.identity.domain.api_keys import (
    MAX_PERMISSIONS,
    SESSION_ONLY_PERMISSIONS,
    ApiKey,
    key_lifetime,
    new_api_key,
    parse_api_key,
    secret_matches,
    validate_key_name,
    validate_permissions,
)
from helios.kernel.errors import InvalidArgumentError

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_z1_new_key_parses_back_to_its_id_and_the_hash_of_its_secret() -> None:
    """Z1: hk_<id hex>_<secret>; only the sha256 of the secret is returned for storage."""
    key_id, token, secret_hash = new_api_key()
    parsed = parse_api_key(token)
    assert parsed is not None
    assert parsed[0] == key_id
    assert token.startswith(f"hk_{key_id.hex}_")
    assert secret_hash == hashlib.sha256(parsed[1].encode()).digest()
    assert secret_matches(secret_hash, parsed[1])
    assert not secret_matches(secret_hash, parsed[1][:-1] + ("A" if parsed[1][-1] != "A" else "B"))
    assert new_api_key()[1] != token


@pytest.mark.parametrize(
    "token",
    ["", "hk_", "hls_" + "a" * 60, "hk_" + "g" * 32 + "_" + "a" * 43, "hk_" + "a" * 32 + "_short"],
)
def test_z1_malformed_keys_do_not_parse(token: str) -> None:
    """Z1: anything but the exact format is no key (resolved as UNAUTHENTICATED)."""
    assert parse_api_key(token) is None
    _, good, _ = new_api_key()
    assert parse_api_key(good + "x") is None
    assert parse_api_key(" " + good) is None


def test_z1_permissions_are_plain_catalog_keys_deduplicated() -> None:
    """Z1: keys are <module>.<entity>.<verb>, sorted and deduplicated; 1..50 of them; none
    that only a person in a session may use (impersonate, mint keys, own credentials)."""
    assert validate_permissions(["iam.member.list", "identity.apiKey.list", "iam.member.list"]) == (
        "iam.member.list",
        "identity.apiKey.list",
    )
    for bad in ([], ["iam.member"], ["iam.member.list:any"], ["iam.*.list"], ["IAM.member.list"]):
        with pytest.raises(InvalidArgumentError):
            validate_permissions(bad)
    for session_only in sorted(SESSION_ONLY_PERMISSIONS):
        with pytest.raises(InvalidArgumentError, match="only a person in a session"):
            validate_permissions(["iam.member.list", session_only])
    with pytest.raises(InvalidArgumentError, match="at most"):
        validate_permissions([f"svc.entity.verb{i}" for i in range(MAX_PERMISSIONS + 1)])


def test_z1_lifetime_defaults_to_90_days_and_is_capped_at_a_year() -> None:
    """Z1: ttl_days 0 means 90 days; 1..365 as asked; anything else refused."""
    assert key_lifetime(0) == dt.timedelta(days=90)
    assert key_lifetime(365) == dt.timedelta(days=365)
    for bad in (-1, 366):
        with pytest.raises(InvalidArgumentError, match="ttl_days"):
            key_lifetime(bad)


def test_z1_key_usable_until_revoked_or_expired() -> None:
    """Z1: usable strictly before expires_at and while not revoked; its principals carry
    the session id apikey:<id>."""
    key = ApiKey(
        id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        name="ci",
        permissions=("iam.member.list",),
        created_by=uuid.uuid4(),
        created_at=NOW,
        expires_at=NOW + dt.timedelta(days=1),
        secret_hash=b"\0" * 32,
    )
    assert key.is_usable(NOW)
    assert not key.is_usable(NOW + dt.timedelta(days=1))
    assert not dataclasses.replace(key, revoked_at=NOW).is_usable(NOW)
    assert key.session_id == f"apikey:{key.id}"
    assert validate_key_name("  deploy bot ") == "deploy bot"
    for bad in ("", "   ", "x" * 101, "tab\tname"):
        with pytest.raises(InvalidArgumentError):
            validate_key_name(bad)
