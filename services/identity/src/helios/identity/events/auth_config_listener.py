"""Keeps this replica's provider configuration fresh: reload on every announced change, and
periodically in case an announcement was missed."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg

from helios.identity.service.auth_config import AUTH_CONFIG_CHANGED, LiveAuthConfig
from helios.kernel.bus import Bus, audit_subject
from helios.kernel.retrying import retry_until_done

__all__ = ["AUTH_CONFIG_CHANGED_SUBJECT", "AuthConfigListener"]

log = logging.getLogger(__name__)

AUTH_CONFIG_CHANGED_SUBJECT = audit_subject("identity", AUTH_CONFIG_CHANGED)
"""The update's audit event, published by the outbox relay after the commit, is the
announcement: every replica hears it (a core subscription each, not a shared consumer)."""


class AuthConfigListener:
    """Reloads `source` from the database when a change is announced on NATS, right after
    (re)subscribing, and every `refresh_seconds` whatever NATS does. A failed reload is logged
    and the configuration in use stays until the next one succeeds."""

    def __init__(self, bus: Bus, source: LiveAuthConfig, *, refresh_seconds: float = 30.0) -> None:
        self._bus = bus
        self._source = source
        self._refresh = refresh_seconds
        self.subscribed = asyncio.Event()
        """Set while announcements are being received (after the catch-up reload)."""

    async def _reload(self, why: str) -> None:
        try:
            config = await self._source.reload()
        except Exception as exc:
            log.warning("reloading the sign-in configuration failed", extra={"error": repr(exc)})
            return
        log.debug("sign-in configuration loaded", extra={"version": config.version, "why": why})

    async def _on_message(self, message: Msg) -> None:
        await self._reload("announced")

    async def _listen(self, stop: asyncio.Event) -> None:
        await self._bus.jetstream()
        client = self._bus.client
        assert client is not None  # jetstream() connected it
        subscription = await client.subscribe(AUTH_CONFIG_CHANGED_SUBJECT, cb=self._on_message)
        try:
            await self._reload("subscribed")  # what changed while nobody listened
            self.subscribed.set()
            await stop.wait()
        finally:
            self.subscribed.clear()
            await subscription.unsubscribe()

    async def _refresh_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._reload("periodic")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._refresh)

    async def run(self, stop: asyncio.Event) -> None:
        """Load at once, then keep fresh until `stop`; retries the subscription while NATS is
        away (the periodic reload goes on meanwhile)."""
        await asyncio.gather(
            self._refresh_periodically(stop),
            retry_until_done("auth config announcements", lambda: self._listen(stop), stop, log),
        )
