"""The provider configuration's rules (C1): every field validated with a clear error, defaults
filled in, and an audit diff that never holds a secret."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from helios.identity.domain.auth_config import (
    MAX_OIDC_PROVIDERS,
    AuthConfig,
    OidcProvider,
    audit_diff,
    validated,
)
from helios.kernel.errors import InvalidArgumentError

GOOD = OidcProvider("okta", "https://login.example.com/oauth2", "helios-web", "s3cr3t-value")


def _refusal(config: AuthConfig) -> InvalidArgumentError:
    with pytest.raises(InvalidArgumentError) as refused:
        validated(config)
    return refused.value


def test_c1_defaults_are_valid_and_zero_days_means_thirty() -> None:
    """C1: the defaults pass; remember_device_days 0 asks for the default, 30."""
    assert validated(AuthConfig(remember_device_days=0)).remember_device_days == 30
    assert validated(AuthConfig()) == AuthConfig()


@pytest.mark.parametrize("days", [1, 30, 365])
def test_c1_remember_device_days_in_bounds(days: int) -> None:
    """C1: 1..365 days are kept as given."""
    assert validated(AuthConfig(remember_device_days=days)).remember_device_days == days


@pytest.mark.parametrize("days", [-1, 366, 10_000])
def test_c1_remember_device_days_out_of_bounds_refused(days: int) -> None:
    """C1: days outside 1..365 (and not 0) are refused, naming the field and the bounds."""
    error = _refusal(AuthConfig(remember_device_days=days))
    assert error.field == "config.remember_device_days"
    assert "1..365" in error.message


@pytest.mark.parametrize("seconds", [0, 60, 3600, 30 * 24 * 3600])
def test_c1_idle_timeout_in_bounds(seconds: int) -> None:
    """C1: no idle timeout (0) or 60 s .. 30 days."""
    assert validated(AuthConfig(session_idle_timeout_seconds=seconds)) == AuthConfig(
        session_idle_timeout_seconds=seconds
    )


@pytest.mark.parametrize("seconds", [-5, 1, 59, 30 * 24 * 3600 + 1])
def test_c1_idle_timeout_out_of_bounds_refused(seconds: int) -> None:
    """C1: an idle timeout below a minute or above 30 days is refused."""
    error = _refusal(AuthConfig(session_idle_timeout_seconds=seconds))
    assert error.field == "config.session_idle_timeout_seconds"
    assert "60.." in error.message


@pytest.mark.parametrize(
    ("issuer", "says"),
    [
        ("", "issuer is required"),
        ("http://login.example.com", "https:// URL"),
        ("https://", "https:// URL"),
        ("login.example.com", "https:// URL"),
        ("https://login.example.com/?tenant=1", "no query"),
        ("https://login.example.com/#top", "no query"),
        ("https://admin:pw@login.example.com", "user info"),
        ("https://login.example.com:99999", "not a valid URL"),
        ("https://login.example.com/a b", "spaces"),
        ("https://" + "a" * 2050 + ".com", "at most 2048"),
    ],
)
def test_c1_issuer_must_be_an_https_url(issuer: str, says: str) -> None:
    """C1: a provider's issuer is an https URL with a host and nothing that could smuggle in
    credentials or parameters."""
    error = _refusal(AuthConfig(oidc_providers=(replace(GOOD, issuer=issuer),)))
    assert error.field == "config.oidc_providers[0].issuer"
    assert says in error.message


@pytest.mark.parametrize("provider_id", ["", "Okta", "-okta", "ok ta", "o" * 64, "okta/eu"])
def test_c1_provider_id_shape_refused(provider_id: str) -> None:
    """C1: provider ids are short lowercase slugs."""
    error = _refusal(AuthConfig(oidc_providers=(replace(GOOD, provider_id=provider_id),)))
    assert error.field == "config.oidc_providers[0].provider_id"


def test_c1_provider_ids_must_be_unique() -> None:
    """C1: two providers with one id are refused, pointing at the second."""
    second = replace(GOOD, issuer="https://other.example.com")
    error = _refusal(AuthConfig(oidc_providers=(GOOD, second)))
    assert error.field == "config.oidc_providers[1].provider_id"
    assert "used twice" in error.message


def test_c1_at_most_twenty_providers() -> None:
    """C1: 20 providers pass, 21 are refused."""
    providers = tuple(replace(GOOD, provider_id=f"p{i}") for i in range(MAX_OIDC_PROVIDERS + 1))
    assert len(validated(AuthConfig(oidc_providers=providers[:-1])).oidc_providers) == 20
    error = _refusal(AuthConfig(oidc_providers=providers))
    assert error.field == "config.oidc_providers"
    assert "at most 20" in error.message


@pytest.mark.parametrize("client_id", ["", "has space", "x" * 256, "tab\there"])
def test_c1_client_id_refused(client_id: str) -> None:
    """C1: a client id is 1-255 printable characters without spaces."""
    error = _refusal(AuthConfig(oidc_providers=(replace(GOOD, client_id=client_id),)))
    assert error.field == "config.oidc_providers[0].client_id"


def test_c1_overlong_client_secret_refused_without_echoing_it() -> None:
    """C1: a secret over 1024 characters is refused; the message never quotes it."""
    secret = "q" * 1025
    error = _refusal(AuthConfig(oidc_providers=(replace(GOOD, client_secret=secret),)))
    assert error.field == "config.oidc_providers[0].client_secret"
    assert secret not in error.message


def test_c1_negative_version_refused() -> None:
    """C1: a version is never negative."""
    assert _refusal(AuthConfig(version=-1)).field == "config.version"


def test_c1_audit_diff_names_changes_never_secrets() -> None:
    """C1: the audit diff lists changed switches and providers by id, and which providers got a
    new secret, without any secret value."""
    before = AuthConfig(oidc_providers=(replace(GOOD, client_secret=""),), version=3)
    other = OidcProvider("entra", "https://login.microsoftonline.com/t/v2.0", "app", "hush-2")
    after = AuthConfig(
        magic_link_enabled=True,
        remember_device_days=7,
        oidc_providers=(replace(GOOD, client_secret="", enabled=False), other),
        version=4,
    )

    diff = audit_diff(before, after, ["entra"])

    assert diff["version"] == {"from": 3, "to": 4}
    assert diff["magic_link_enabled"] == {"from": False, "to": True}
    assert diff["remember_device_days"] == {"from": 30, "to": 7}
    assert "mfa_required" not in diff
    assert diff["oidc_providers"] == {
        "added": [
            {
                "provider_id": "entra",
                "issuer": "https://login.microsoftonline.com/t/v2.0",
                "client_id": "app",
                "enabled": True,
            }
        ],
        "changed": {
            "okta": {
                "from": {"issuer": GOOD.issuer, "client_id": GOOD.client_id, "enabled": True},
                "to": {"issuer": GOOD.issuer, "client_id": GOOD.client_id, "enabled": False},
            }
        },
        "client_secret_set": ["entra"],
    }
    text = json.dumps(diff)
    assert "hush-2" not in text
    assert GOOD.client_secret not in text


def test_c1_audit_diff_of_removed_provider() -> None:
    """C1: removing a provider is recorded by its id."""
    diff = audit_diff(AuthConfig(oidc_providers=(GOOD,), version=1), AuthConfig(version=2), [])
    assert diff["oidc_providers"] == {"removed": ["okta"]}
