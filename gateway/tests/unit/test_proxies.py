"""The client address the gateway believes: forwarded headers only from trusted proxies (P2, S4)."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from helios.gateway.proxies import ClientAddress, TrustedProxies

pytestmark = pytest.mark.unit

PROXIES = TrustedProxies(["10.0.0.0/8", "192.0.2.10", "2001:db8:ff::/48"])
CLIENT = "203.0.113.7"
LB = "10.1.2.3"


def test_p2_untrusted_peer_spoofed_forwarding_headers_are_ignored() -> None:
    headers = {
        "X-Forwarded-For": "1.1.1.1",
        "CF-Connecting-IP": "8.8.8.8",
        "CF-IPCountry": "US",
        "CF-IPCity": "Springfield",
    }
    assert PROXIES.client_address(CLIENT, headers) == ClientAddress(ip=CLIENT)


def test_s4_untrusted_peer_geo_headers_are_ignored() -> None:
    got = PROXIES.client_address(CLIENT, {"cf-ipcountry": "FR", "cf-ipcity": "Paris"})
    assert (got.city, got.country, got.via_proxy) == ("", "", False)


def test_p2_no_trusted_proxies_believes_nobody() -> None:
    nobody = TrustedProxies([])
    got = nobody.client_address("127.0.0.1", {"x-forwarded-for": "1.1.1.1"})
    assert got == ClientAddress(ip="127.0.0.1")
    assert nobody.networks == ()


def test_p2_trusted_peer_single_hop_xff() -> None:
    got = PROXIES.client_address(LB, {"x-forwarded-for": CLIENT})
    assert got == ClientAddress(ip=CLIENT, via_proxy=True)


def test_p2_trusted_chain_skips_proxies_from_the_right() -> None:
    # client-supplied junk on the left, then the real client, then two of our proxies
    headers = {"x-forwarded-for": f"6.6.6.6, {CLIENT}, 10.9.9.9, 192.0.2.10"}
    assert PROXIES.client_address(LB, headers).ip == CLIENT


def test_p2_spoofed_leftmost_xff_entry_is_not_believed_through_a_proxy() -> None:
    # the client sent "X-Forwarded-For: 1.1.1.1"; our proxy appended the address it saw
    got = PROXIES.client_address(LB, {"x-forwarded-for": f"1.1.1.1, {CLIENT}"})
    assert got.ip == CLIENT
    assert got.ip != "1.1.1.1"


def test_p2_repeated_xff_header_lines_are_read_as_one_list() -> None:
    # a second header line added by our proxy must not be hidden behind the client's first one
    headers = Headers(raw=[(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", CLIENT.encode())])
    assert PROXIES.client_address(LB, headers).ip == CLIENT


def test_p2_all_xff_entries_trusted_gives_the_leftmost() -> None:
    got = PROXIES.client_address(LB, {"x-forwarded-for": "10.5.5.5, 10.6.6.6"})
    assert got == ClientAddress(ip="10.5.5.5", via_proxy=True)


def test_p2_trusted_peer_without_headers_is_the_client() -> None:
    assert PROXIES.client_address(LB, {}) == ClientAddress(ip=LB, via_proxy=True)


@pytest.mark.parametrize(
    "xff",
    ["not-an-ip", "unknown", "", " , ", "999.1.1.1", "1.2.3.4.5", "[::1", "[::1]x", "_hidden"],
)
def test_p2_invalid_xff_entry_falls_back_to_the_peer(xff: str) -> None:
    got = PROXIES.client_address(LB, {"x-forwarded-for": xff})
    assert got == ClientAddress(ip=LB, via_proxy=True)


def test_p2_invalid_entry_stops_the_walk_before_anything_left_of_it() -> None:
    got = PROXIES.client_address(LB, {"x-forwarded-for": f"{CLIENT}, garbage, 10.7.7.7"})
    assert got.ip == LB


def test_p2_xff_entries_with_ports_are_read() -> None:
    assert PROXIES.client_address(LB, {"x-forwarded-for": f"{CLIENT}:51000"}).ip == CLIENT
    got = PROXIES.client_address(LB, {"x-forwarded-for": "[2001:db8::7]:443"})
    assert got.ip == "2001:db8::7"


def test_p2_cf_connecting_ip_wins_over_xff_from_a_trusted_peer() -> None:
    headers = {"cf-connecting-ip": CLIENT, "x-forwarded-for": "198.51.100.1"}
    assert PROXIES.client_address(LB, headers).ip == CLIENT


def test_p2_invalid_cf_connecting_ip_falls_back_to_the_peer_not_to_xff() -> None:
    headers = {"cf-connecting-ip": "<script>", "x-forwarded-for": "198.51.100.1"}
    assert PROXIES.client_address(LB, headers) == ClientAddress(ip=LB, via_proxy=True)


def test_p2_header_names_are_case_insensitive() -> None:
    assert PROXIES.client_address(LB, {"CF-Connecting-IP": CLIENT}).ip == CLIENT


def test_s4_geo_from_a_trusted_peer() -> None:
    headers = {"cf-connecting-ip": CLIENT, "cf-ipcountry": "de", "cf-ipcity": " Berlin "}
    got = PROXIES.client_address(LB, headers)
    assert got == ClientAddress(ip=CLIENT, city="Berlin", country="DE", via_proxy=True)


@pytest.mark.parametrize("country", ["XX", "T1", "DEU", "D", "", "1A", "ÄB", "<>"])
def test_s4_invalid_or_unknown_country_is_dropped(country: str) -> None:
    assert PROXIES.client_address(LB, {"cf-ipcountry": country}).country == ""


@pytest.mark.parametrize("city", ["x" * 101, "Par\nis", "Ber\x00lin", "a\tb"])
def test_s4_invalid_city_is_dropped(city: str) -> None:
    assert PROXIES.client_address(LB, {"cf-ipcity": city}).city == ""


def test_s4_city_of_100_characters_is_kept() -> None:
    assert PROXIES.client_address(LB, {"cf-ipcity": "y" * 100}).city == "y" * 100


def test_s4_utf8_city_decoded_from_latin1_header() -> None:
    headers = Headers(raw=[(b"cf-ipcity", "Zürich".encode())])
    assert PROXIES.client_address(LB, headers).city == "Zürich"


@pytest.mark.parametrize(
    "cidr",
    [
        "10.0.0.0/33",
        "10.0.0.1/8",
        "example.com",
        "",
        "10.0.0.0/8,192.168.0.0/16",
        "0.0.0.0/0",
        "::/0",
    ],
)
def test_p2_bad_cidr_is_refused(cidr: str) -> None:
    with pytest.raises(ValueError, match="trusted proxy"):
        TrustedProxies([cidr])


def test_p2_single_string_instead_of_a_list_is_refused() -> None:
    with pytest.raises(TypeError, match="list of CIDR strings"):
        TrustedProxies("10.0.0.0/8")


def test_p2_ipv6_untrusted_peer_is_normalised_and_headers_ignored() -> None:
    got = PROXIES.client_address("2001:DB8:0:0::1", {"x-forwarded-for": "1.1.1.1"})
    assert got == ClientAddress(ip="2001:db8::1")


def test_p2_ipv6_trusted_proxy_forwards_ipv6_client() -> None:
    got = PROXIES.client_address("2001:db8:ff::1", {"x-forwarded-for": "2001:db8:1::42"})
    assert got == ClientAddress(ip="2001:db8:1::42", via_proxy=True)


def test_p2_ipv4_mapped_peer_matches_ipv4_network() -> None:
    got = PROXIES.client_address("::ffff:10.1.2.3", {"x-forwarded-for": CLIENT})
    assert got == ClientAddress(ip=CLIENT, via_proxy=True)


def test_p2_unparsable_peer_is_untrusted_and_kept_as_given() -> None:
    assert PROXIES.client_address("", {"x-forwarded-for": CLIENT}) == ClientAddress(ip="")
    assert not PROXIES.is_trusted("testclient")
