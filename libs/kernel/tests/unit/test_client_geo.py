"""The client's city and country in call metadata: encoded for transport, validated on arrival
(S4)."""

from __future__ import annotations

import pytest

from helios.kernel.client_geo import MAX_CITY, decode_city, encode_city, valid_country
from helios.kernel.clients import call_metadata
from helios.kernel.interceptors import CITY_KEY, COUNTRY_KEY

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("city", ["Zürich", "São Paulo", "Saint-Étienne", "東京", "N'Djamena"])
def test_s4_city_round_trips_through_ascii_metadata(city: str) -> None:
    encoded = encode_city(city)
    assert encoded.isascii()
    assert encoded.isprintable()
    assert decode_city(encoded) == city


def test_s4_percent_encoded_city_as_cloudflare_may_send_it_is_decoded() -> None:
    assert decode_city("S%C3%A3o%20Paulo") == "São Paulo"
    assert decode_city("Berlin") == "Berlin"


@pytest.mark.parametrize(
    "raw",
    [
        "Par%0Ais",  # a line break
        "Ber%00lin",  # NUL
        "Evil%E2%80%AEcity",  # a right-to-left override
        "Z%FCrich",  # latin-1, not UTF-8
        "Zürich",  # not ASCII: metadata never carries that
        "x" * (MAX_CITY + 1),
        "%78" * (MAX_CITY + 1),
        "",
    ],
)
def test_s4_invalid_city_is_dropped(raw: str) -> None:
    assert decode_city(raw) == ""


def test_s4_city_of_max_length_is_kept() -> None:
    assert decode_city(encode_city("é" * MAX_CITY)) == "é" * MAX_CITY


@pytest.mark.parametrize(("raw", "country"), [("DE", "DE"), ("ch", "CH"), (" fr ", "FR")])
def test_s4_country_is_an_upper_case_alpha2_code(raw: str, country: str) -> None:
    assert valid_country(raw) == country


@pytest.mark.parametrize("raw", ["XX", "T1", "DEU", "D", "", "Ä1", "<>", "ÄB"])
def test_s4_unknown_or_invalid_country_is_dropped(raw: str) -> None:
    assert valid_country(raw) == ""


def test_s4_call_metadata_carries_valid_geo_only() -> None:
    pairs = dict(call_metadata(client_ip="203.0.113.9", city="Zürich", country="ch"))
    assert pairs[CITY_KEY] == "Z%C3%BCrich"
    assert pairs[COUNTRY_KEY] == "CH"
    bare = dict(call_metadata(client_ip="203.0.113.9", city="Pa\nris", country="XX"))
    assert CITY_KEY not in bare
    assert COUNTRY_KEY not in bare
