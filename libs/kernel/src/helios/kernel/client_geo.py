"""The client's city and country as they travel from the edge in call metadata (S4): the city
percent-encoded (metadata values are ASCII), both validated and length-limited on arrival."""

from __future__ import annotations

from urllib.parse import quote, unquote

__all__ = ["MAX_CITY", "decode_city", "encode_city", "valid_country"]

MAX_CITY = 100
"""Longest city name kept, in characters."""

_UNKNOWN_COUNTRY = "XX"  # Cloudflare's "no country information"
# Every character of a city percent-encoded as 4 UTF-8 bytes: nothing longer can decode to one.
_MAX_ENCODED = MAX_CITY * 4 * 3


def _valid_city(city: str) -> str:
    city = city.strip()
    if len(city) > MAX_CITY or not city.isprintable():
        return ""
    return city


def encode_city(city: str) -> str:
    """`city` percent-encoded as UTF-8 for a metadata value; '' for an empty or invalid one."""
    city = _valid_city(city)
    return quote(city, safe="") if city else ""


def decode_city(raw: str) -> str:
    """The city from its percent-encoded form (as Cloudflare's CF-IPCity may also arrive): ''
    when it is malformed, not UTF-8, longer than MAX_CITY or holds control or format characters
    (line breaks, bidi overrides). Never raises."""
    if not raw or len(raw) > _MAX_ENCODED or not raw.isascii():
        return ""
    try:
        decoded = unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return ""
    return _valid_city(decoded)


def valid_country(raw: str) -> str:
    """An ISO 3166 alpha-2 code in upper case, or '' (unknown 'XX', Tor 'T1', anything else)."""
    value = raw.strip().upper()
    if len(value) == 2 and value.isascii() and value.isalpha() and value != _UNKNOWN_COUNTRY:
        return value
    return ""
