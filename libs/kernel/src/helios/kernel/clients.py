"""Outbound gRPC: mTLS channels to other services and the metadata that carries who is calling."""

from __future__ import annotations

import grpc
from opentelemetry import propagate

from helios.kernel.client_geo import encode_city, valid_country
from helios.kernel.interceptors import CITY_KEY, CLIENT_IP_KEY, COUNTRY_KEY, USER_AGENT_KEY
from helios.kernel.principal import METADATA_KEY
from helios.kernel.tls import CertFiles, channel_credentials
from helios.proto.common.v1 import principal_pb2

__all__ = ["LazyChannel", "call_metadata", "secure_channel"]


def secure_channel(target: str, certs: CertFiles) -> grpc.aio.Channel:
    """A channel to `target` (host:port) over mutual TLS with this process's certificate."""
    return grpc.aio.secure_channel(target, channel_credentials(certs))


class LazyChannel:
    """A mutual-TLS channel to one service, opened on first use (so inside the event loop that
    uses it: gRPC aio channels belong to their loop) and closed by `close()`."""

    def __init__(self, target: str, certs: CertFiles) -> None:
        self._target = target
        self._certs = certs
        self._channel: grpc.aio.Channel | None = None

    def get(self) -> grpc.aio.Channel:
        """The channel, opened now if it is not yet."""
        if self._channel is None:
            self._channel = secure_channel(self._target, self._certs)
        return self._channel

    async def close(self) -> None:
        """Close the channel if it was opened (idempotent; a later `get()` opens a new one)."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def call_metadata(
    *,
    assertion: principal_pb2.PrincipalAssertion | None = None,
    client_ip: str = "",
    user_agent: str = "",
    city: str = "",
    country: str = "",
) -> tuple[tuple[str, str | bytes], ...]:
    """Metadata for one outbound call: the signed principal, the edge's view of the client (its
    city and country only as a trusted proxy reported them; an invalid one is left out), and
    the current trace context."""
    pairs: list[tuple[str, str | bytes]] = []
    if assertion is not None:
        pairs.append((METADATA_KEY, assertion.SerializeToString()))
    if client_ip:
        pairs.append((CLIENT_IP_KEY, client_ip))
    if user_agent:
        pairs.append((USER_AGENT_KEY, user_agent))
    if encoded_city := encode_city(city):
        pairs.append((CITY_KEY, encoded_city))
    if checked_country := valid_country(country):
        pairs.append((COUNTRY_KEY, checked_country))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    pairs.extend(carrier.items())
    return tuple(pairs)
