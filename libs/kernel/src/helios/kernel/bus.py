"""NATS JetStream connection that survives outages, and the AUDIT stream every producer uses."""

from __future__ import annotations

import asyncio
import logging
import ssl

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

__all__ = [
    "AUDIT_STREAM",
    "AUDIT_SUBJECTS",
    "Bus",
    "audit_stream_config",
    "audit_subject",
    "ensure_audit_stream",
]

log = logging.getLogger(__name__)

AUDIT_STREAM = "AUDIT"
AUDIT_SUBJECTS = "audit.>"
# Redelivered or republished events inside this window are dropped by JetStream (Nats-Msg-Id).
_DUPLICATE_WINDOW_SECONDS = 30 * 60
_AUDIT_MAX_AGE_SECONDS = 30 * 24 * 3600


def audit_subject(producer: str, action: str) -> str:
    """Subject of one audit event: `audit.<producer>.<action>` (dots in the action stay tokens)."""
    return f"audit.{producer}.{action}"


def audit_stream_config(replicas: int = 1) -> StreamConfig:
    """The AUDIT stream: file storage, 30 days, a 30-minute de-duplication window, kept on
    `replicas` JetStream servers (3 on a three-node cluster: a node lost loses no event)."""
    return StreamConfig(
        name=AUDIT_STREAM,
        subjects=[AUDIT_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=_DUPLICATE_WINDOW_SECONDS,
        max_age=_AUDIT_MAX_AGE_SECONDS,
        num_replicas=replicas,
    )


async def ensure_audit_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the AUDIT stream, or bring its configuration to ours; idempotent and safe across
    replicas (every process must be given the same `replicas`)."""
    config = audit_stream_config(replicas)
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


class Bus:
    """A lazily (re)connecting NATS client: `jetstream()` returns a context or raises, never hangs
    for longer than the connect timeout, so callers can retry while NATS is away. `url` may list
    several servers of one cluster, separated by commas; `tls` (for `tls://` servers) is the
    process's mutual-TLS context."""

    def __init__(
        self,
        url: str,
        name: str,
        stream_replicas: int = 1,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._url = url
        self._name = name
        self._stream_replicas = stream_replicas
        self._tls = tls
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def jetstream(self) -> JetStreamContext:
        """A JetStream context on a live connection, with the AUDIT stream in place."""
        async with self._lock:
            if self._client is None or self._client.is_closed:
                client = await nats.connect(
                    self._url.split(","),
                    name=self._name,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    tls=self._tls,
                )
                try:
                    await ensure_audit_stream(client.jetstream(timeout=5), self._stream_replicas)
                except BaseException:
                    await client.close()  # JetStream not ready: the next call connects again
                    raise
                self._client = client
                log.info("connected to NATS", extra={"nats": self._url})
            return self._client.jetstream(timeout=5)

    @property
    def client(self) -> Client | None:
        """The underlying client, when connected once."""
        return self._client

    async def close(self) -> None:
        """Drain and close the connection (idempotent)."""
        if self._client is not None and not self._client.is_closed:
            await self._client.drain()
        self._client = None
