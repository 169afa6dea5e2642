"""Rules for e-mail addresses, passwords and names, checked before anything is stored."""

from __future__ import annotations

import re
import unicodedata

from helios.identity.domain.common_passwords import is_common_password
from helios.kernel.errors import InvalidArgumentError

__all__ = [
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "normalize_email",
    "password_strength",
    "validate_display_name",
    "validate_password",
    "validate_slug",
]

MIN_PASSWORD_CHARS = 10
# Long enough for any passphrase, short enough that hashing cannot be used to burn CPU.
MAX_PASSWORD_CHARS = 256
_MAX_EMAIL = 254
_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Local parts shorter than this are not looked for inside a password (too many false refusals).
_MIN_LOCAL_PART_CHECKED = 3


def normalize_email(raw: str) -> str:
    """The address trimmed with its domain lower-cased; raises InvalidArgumentError if invalid."""
    email = raw.strip()
    if not email:
        raise InvalidArgumentError("email is required", field="email")
    if len(email) > _MAX_EMAIL or email.count("@") != 1:
        raise InvalidArgumentError("email is not a valid address", field="email")
    local, domain = email.split("@")
    labels = domain.split(".")
    if (
        not _LOCAL.fullmatch(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise InvalidArgumentError("email is not a valid address", field="email")
    return f"{local}@{domain.lower()}"


def validate_password(password: str) -> None:
    """Raise InvalidArgumentError when the password is too short or too long."""
    length = len(unicodedata.normalize("NFC", password))
    if length < MIN_PASSWORD_CHARS:
        raise InvalidArgumentError(
            f"password must have at least {MIN_PASSWORD_CHARS} characters", field="password"
        )
    if length > MAX_PASSWORD_CHARS:
        raise InvalidArgumentError(
            f"password must have at most {MAX_PASSWORD_CHARS} characters", field="password"
        )


def password_strength(password: str, email: str) -> None:
    """The whole password policy for sign-up, reset and change: the length rule, then refuse a
    password on the offline common-password list (ignoring case) or one that equals or contains
    the e-mail's local part (also without its `+tag`). Raises InvalidArgumentError on `password`;
    the message never repeats the password. `email` is the normalised address."""
    validate_password(password)
    if is_common_password(password):
        raise InvalidArgumentError(
            "password is too common: it is on a list of frequently used passwords; "
            "choose a longer, less predictable one",
            field="password",
        )
    lowered = unicodedata.normalize("NFC", password).casefold()
    local = email.rsplit("@", 1)[0].casefold()
    for part in {local, local.split("+", 1)[0]}:
        if len(part) >= _MIN_LOCAL_PART_CHECKED and part in lowered:
            raise InvalidArgumentError(
                "password must not contain your e-mail address or its name part",
                field="password",
            )


def validate_display_name(name: str) -> str:
    """The trimmed display name (1..100 printable characters)."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidArgumentError("display_name is required", field="display_name")
    if len(cleaned) > 100 or not cleaned.isprintable():
        raise InvalidArgumentError(
            "display_name must be at most 100 printable characters", field="display_name"
        )
    return cleaned


def validate_slug(slug: str) -> str:
    """An org slug: lower-case letters, digits and inner hyphens, 1..63 characters."""
    if not _SLUG.fullmatch(slug):
        raise InvalidArgumentError(
            "slug must be 1-63 lower-case letters, digits or inner hyphens", field="slug"
        )
    return slug
