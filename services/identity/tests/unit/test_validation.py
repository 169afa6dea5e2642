"""E-mail, password, display-name and slug rules applied before anything is stored (A1)."""

from __future__ import annotations

import pytest

from helios.identity.domain.common_passwords import common_passwords, is_common_password
from helios.identity.domain.validation import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    normalize_email,
    password_strength,
    validate_display_name,
    validate_password,
    validate_slug,
)
from helios.kernel.errors import InvalidArgumentError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada.Lovelace@Example.COM \t", "Ada.Lovelace@example.com"),
        ("first+tag@mail.example.co.uk", "first+tag@mail.example.co.uk"),
        ("o'neil@xn--bcher-kva.example", "o'neil@xn--bcher-kva.example"),
        ("a@b-c.io", "a@b-c.io"),
    ],
)
def test_a1_valid_email_normalized(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "plainaddress",
        "two@@example.com",
        "a@b@example.com",
        "@example.com",
        "ada@",
        "ada@localhost",
        "ada@example..com",
        "ada@-example.com",
        "ada@example-.com",
        "ada@example.123",
        "ada@exa mple.com",
        ".ada@example.com",
        "ada.@example.com",
        "ad..a@example.com",
        "a da@example.com",
        "ada(comment)@example.com",
        "ada@exämple.com",
        "ada@" + "a" * 64 + ".com",
        "a" * 65 + "@example.com",
        "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com",
    ],
)
def test_a1_invalid_email_refused(raw: str) -> None:
    with pytest.raises(InvalidArgumentError, match="not a valid address") as refused:
        normalize_email(raw)
    assert refused.value.field == "email"


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_a1_empty_email_refused_as_required(raw: str) -> None:
    with pytest.raises(InvalidArgumentError, match="email is required") as refused:
        normalize_email(raw)
    assert refused.value.field == "email"


def test_a1_email_length_limits() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 61] * 3) + ".com"
    longest = f"{local}@{domain}"
    assert len(longest) == 254
    assert normalize_email(longest) == longest
    with pytest.raises(InvalidArgumentError):
        normalize_email(f"{local}@b{domain}")


@pytest.mark.parametrize(
    "password",
    [
        "x" * MIN_PASSWORD_CHARS,
        "correct horse battery staple",
        "é" * MIN_PASSWORD_CHARS,
        "🔑" * MIN_PASSWORD_CHARS,
        "y" * MAX_PASSWORD_CHARS,
    ],
)
def test_a1_acceptable_password_passes(password: str) -> None:
    assert validate_password(password) is None


@pytest.mark.parametrize("password", ["", "short", "x" * (MIN_PASSWORD_CHARS - 1)])
def test_a1_too_short_password_refused(password: str) -> None:
    with pytest.raises(InvalidArgumentError, match="at least 10 characters") as refused:
        validate_password(password)
    assert refused.value.field == "password"


def test_a1_too_long_password_refused() -> None:
    password = "z" * (MAX_PASSWORD_CHARS + 1)
    with pytest.raises(InvalidArgumentError, match="at most 256 characters") as refused:
        validate_password(password)
    assert refused.value.field == "password"
    assert password not in refused.value.message


def test_a1_password_length_counts_composed_characters() -> None:
    """Ten code points that compose to five characters are too short."""
    decomposed = "e\u0301" * 5
    assert len(decomposed) == MIN_PASSWORD_CHARS
    with pytest.raises(InvalidArgumentError):
        validate_password(decomposed)


def test_a1_refusal_never_echoes_the_password() -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        validate_password("hunter2")
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Ada", "Ada"),
        ("  Ada Lovelace  ", "Ada Lovelace"),
        ("Zoë 🚀", "Zoë 🚀"),
        ("x" * 100, "x" * 100),
    ],
)
def test_a1_display_name_trimmed(raw: str, cleaned: str) -> None:
    assert validate_display_name(raw) == cleaned


@pytest.mark.parametrize("raw", ["", "   ", "x" * 101, "Ada\nLovelace", "Ada\x00", "bell\x07"])
def test_a1_bad_display_name_refused(raw: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        validate_display_name(raw)
    assert refused.value.field == "display_name"


@pytest.mark.parametrize("slug", ["a", "acme", "acme-corp", "a1-b2", "x" * 63])
def test_p1_valid_org_slug_accepted(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize(
    "slug", ["", "-acme", "acme-", "Acme", "acme_corp", "acme corp", "acmé", "x" * 64]
)
def test_p1_invalid_org_slug_refused(slug: str) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        validate_slug(slug)
    assert refused.value.field == "slug"


def test_a1_common_password_list_is_packaged_and_complete() -> None:
    """A1: the offline list ships as a package resource: 10,000 entries, header skipped."""
    listed = common_passwords()
    assert len(listed) >= 9_900
    assert {"password", "qwertyuiop", "1234567890", "basketball"} <= listed
    assert not any(entry.startswith("#") for entry in listed)


@pytest.mark.parametrize("password", ["qwertyuiop", "QwertyUIOP", "1234567890", "BASKETBALL"])
def test_a1_listed_password_refused_ignoring_case(password: str) -> None:
    assert is_common_password(password)
    with pytest.raises(InvalidArgumentError, match="too common") as refused:
        password_strength(password, "ada@example.com")
    assert refused.value.field == "password"
    assert password not in refused.value.message


@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("ada.lovelace", "ada.lovelace@example.com"),
        ("I-am-ADA.LOVELACE!", "Ada.Lovelace@example.com"),
        ("hopper-1906-grace", "grace+jobs@example.com"),
    ],
)
def test_a1_password_from_email_local_part_refused(password: str, email: str) -> None:
    with pytest.raises(InvalidArgumentError, match="e-mail") as refused:
        password_strength(password, email)
    assert refused.value.field == "password"
    assert password not in refused.value.message


def test_a1_strong_password_passes_and_short_local_parts_are_not_searched() -> None:
    assert password_strength("violet kettle orbit 42 lanterns", "ada@example.com") is None
    assert password_strength("xylophone quartz 77", "xy@example.com") is None


def test_a1_password_strength_keeps_the_length_rule() -> None:
    with pytest.raises(InvalidArgumentError, match="at least 10 characters"):
        password_strength("short", "ada@example.com")
