"""The offline list of common passwords shipped with the package (no network at any time)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

__all__ = ["RESOURCE", "common_passwords", "is_common_password"]

# One password a line, most common first; lines starting with '#' (source, licence) are skipped.
RESOURCE = "common_passwords.txt"


@cache
def common_passwords() -> frozenset[str]:
    """Every listed password, lower-cased; read from the package resource once per process."""
    text = (files(__package__ or "helios.identity.domain") / RESOURCE).read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def is_common_password(password: str) -> bool:
    """True when `password` (ignoring case and surrounding spaces) is on the list."""
    return password.strip().lower() in common_passwords()
