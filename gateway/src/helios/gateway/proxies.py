"""Who the client is: X-Forwarded-For and CF-* headers are believed only from trusted proxies."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from helios.kernel.client_geo import decode_city

__all__ = ["ClientAddress", "TrustedProxies"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_XFF = "x-forwarded-for"
_CF_IP = "cf-connecting-ip"
_CF_CITY = "cf-ipcity"
_CF_COUNTRY = "cf-ipcountry"
_MAX_CITY = 100
_UNKNOWN_COUNTRY = "XX"  # Cloudflare's "no country information"


@dataclass(frozen=True, slots=True)
class ClientAddress:
    """The client as far as the gateway can tell.

    `ip` is the client's address (normalised, IPv4-mapped IPv6 shown as IPv4), or the TCP peer
    as given when no better one is known; `city` / `country` (ISO 3166 alpha-2, upper case) are
    '' unless a trusted proxy reported valid ones; `via_proxy` says the TCP peer is a trusted
    proxy, so `ip` is what that proxy reported (or the proxy itself if it reported nothing valid).
    """

    ip: str
    city: str = ""
    country: str = ""
    via_proxy: bool = False


def _parse_ip(text: str) -> IPAddress | None:
    """An address from a peer or header entry ('1.2.3.4', '1.2.3.4:80', '[::1]:80', '::1');
    None when it is not one. IPv4-mapped IPv6 addresses become IPv4."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not text[end + 1 :].startswith(":")):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    if not text or len(text) > 64:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _header_values(headers: Mapping[str, str], names: frozenset[str]) -> dict[str, list[str]]:
    """Every value of the named headers, matched case-insensitively and in arrival order (a
    Starlette `Headers` yields repeated headers from `items()`; a plain dict yields one each)."""
    found: dict[str, list[str]] = {name: [] for name in names}
    for key, value in headers.items():
        lowered = key.lower()
        if lowered in found:
            found[lowered].append(value)
    return found


def _country(values: list[str]) -> str:
    value = values[-1].strip().upper() if values else ""
    if len(value) == 2 and value.isascii() and value.isalpha() and value != _UNKNOWN_COUNTRY:
        return value
    return ""


def _city(values: list[str]) -> str:
    if not values:
        return ""
    value = values[-1].strip()
    if "%" in value:
        # Percent-encoded UTF-8 ('Z%C3%BCrich'), as Cloudflare may send a non-ASCII name.
        return decode_city(value)
    # ASGI header values arrive as bytes that Starlette decodes as latin-1; raw UTF-8 must be
    # undone to get 'Zürich' rather than 'ZÃ¼rich'.
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("latin-1").decode("utf-8")
    if len(value) > _MAX_CITY or not value.isprintable():
        return ""
    return value


class TrustedProxies:
    """The networks whose forwarding headers are believed; built once from settings.

    Every other peer is the client itself: its X-Forwarded-For and CF-* headers are ignored, so a
    client cannot choose the address that rate limits and audit records see.
    """

    def __init__(self, cidrs: Iterable[str]) -> None:
        """Raises ValueError naming the entry when one is not an IP address or CIDR network
        (host bits set, e.g. '10.0.0.1/8', is refused as a likely typo) or is a /0 that would
        trust every peer; TypeError when given a single string instead of a list."""
        if isinstance(cidrs, str):
            raise TypeError("trusted proxies must be a list of CIDR strings, not one string")
        networks: list[IPNetwork] = []
        for entry in cidrs:
            if not isinstance(entry, str):
                raise TypeError(f"trusted proxy {entry!r} is not a string")
            try:
                network = ipaddress.ip_network(entry.strip(), strict=True)
            except ValueError as exc:
                raise ValueError(
                    f"trusted proxy {entry!r} is not an IP address or CIDR network: {exc}"
                ) from None
            if network.prefixlen == 0:
                raise ValueError(
                    f"trusted proxy {entry!r} would trust every peer, so any client could "
                    "choose its own address; list the proxies' networks instead"
                )
            networks.append(network)
        self._networks: tuple[IPNetwork, ...] = tuple(networks)

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        """The trusted networks, in the order given."""
        return self._networks

    def is_trusted(self, address: str | IPAddress) -> bool:
        """Whether `address` lies in a trusted network; False for anything not an IP address."""
        parsed = _parse_ip(address) if isinstance(address, str) else address
        if parsed is None:
            return False
        return any(parsed in network for network in self._networks)

    def client_address(self, peer_ip: str, headers: Mapping[str, str]) -> ClientAddress:
        """The client behind `peer_ip` (the TCP peer) given the request `headers`. Never raises:
        headers from an untrusted peer are ignored and a malformed forwarded address falls back to
        the peer.

        From a trusted proxy: CF-Connecting-IP when present, else X-Forwarded-For walked from the
        right, skipping trusted proxies, up to the first untrusted address (all entries trusted:
        the leftmost; a malformed entry stops the walk, as nothing left of it can be believed);
        CF-IPCity and CF-IPCountry are read only then.
        """
        peer = _parse_ip(peer_ip)
        if peer is None or not self.is_trusted(peer):
            return ClientAddress(ip=str(peer) if peer is not None else peer_ip)
        found = _header_values(headers, frozenset({_XFF, _CF_IP, _CF_CITY, _CF_COUNTRY}))
        client = self._forwarded_client(found[_CF_IP], found[_XFF])
        return ClientAddress(
            ip=str(client if client is not None else peer),
            city=_city(found[_CF_CITY]),
            country=_country(found[_CF_COUNTRY]),
            via_proxy=True,
        )

    def _forwarded_client(self, cf_ip: list[str], xff: list[str]) -> IPAddress | None:
        if cf_ip:
            return _parse_ip(cf_ip[-1])
        entries = [entry for value in xff for entry in value.split(",")]
        leftmost: IPAddress | None = None
        for entry in reversed(entries):
            address = _parse_ip(entry)
            if address is None:
                return None
            if not self.is_trusted(address):
                return address
            leftmost = address
        return leftmost
