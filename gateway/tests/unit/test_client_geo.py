"""City and country reach the services only when a trusted proxy reported them (S4)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from helios.gateway.edge import client_metadata
from helios.gateway.proxies import TrustedProxies
from helios.kernel.client_geo import decode_city
from helios.kernel.interceptors import CITY_KEY, CLIENT_IP_KEY, COUNTRY_KEY

pytestmark = pytest.mark.unit

PROXY = "10.1.2.3"
CLIENT = "203.0.113.7"
GEO = [
    (b"cf-connecting-ip", CLIENT.encode()),
    (b"cf-ipcity", "Zürich".encode()),
    (b"cf-ipcountry", b"CH"),
    (b"user-agent", b"Mozilla/5.0 Firefox/128.0"),
]


def _request(peer: str, headers: list[tuple[bytes, bytes]]) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(trusted_proxies=TrustedProxies(["10.0.0.0/8"])))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/auth/sign-in",
        "headers": headers,
        "client": (peer, 40000),
        "app": app,
    }
    return Request(scope)


def test_s4_geo_of_a_trusted_proxy_travels_in_the_call_metadata() -> None:
    pairs = dict(client_metadata(_request(PROXY, GEO)))
    assert pairs[CLIENT_IP_KEY] == CLIENT
    assert decode_city(str(pairs[CITY_KEY])) == "Zürich"
    assert pairs[COUNTRY_KEY] == "CH"


def test_s4_geo_headers_sent_by_the_client_itself_are_dropped() -> None:
    pairs = dict(client_metadata(_request(CLIENT, GEO)))
    assert pairs[CLIENT_IP_KEY] == CLIENT
    assert CITY_KEY not in pairs
    assert COUNTRY_KEY not in pairs


def test_s4_percent_encoded_city_from_a_trusted_proxy_is_decoded() -> None:
    headers = [(b"cf-ipcity", b"S%C3%A3o%20Paulo"), (b"cf-ipcountry", b"BR")]
    pairs = dict(client_metadata(_request(PROXY, headers)))
    assert decode_city(str(pairs[CITY_KEY])) == "São Paulo"


@pytest.mark.parametrize("city", [b"Par%0Ais", b"Z%FCrich", b"%E2%80%AEevil"])
def test_s4_malformed_percent_encoded_city_is_dropped(city: bytes) -> None:
    pairs = dict(client_metadata(_request(PROXY, [(b"cf-ipcity", city)])))
    assert CITY_KEY not in pairs
