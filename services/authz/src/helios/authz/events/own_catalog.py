"""Registers authz's own permissions in the catalog when the process starts."""

from __future__ import annotations

import asyncio
import logging

from helios.authz.domain.own_permissions import AUTHZ_PERMISSIONS
from helios.authz.service.catalog import CatalogService
from helios.kernel.context import CallContext
from helios.kernel.retrying import retry_until_done
from helios.kernel.server import BackgroundTask

__all__ = ["register_own_catalog"]

log = logging.getLogger(__name__)


def register_own_catalog(catalog: CatalogService, name: str) -> BackgroundTask:
    """A background task registering AUTHZ_PERMISSIONS as service `name` (idempotent), retried
    until PostgreSQL answers; it ends once done."""

    async def attempt() -> None:
        added, _ = await catalog.register(CallContext(caller=name), name, list(AUTHZ_PERMISSIONS))
        log.info("own permissions registered", extra={"added": len(added)})

    async def run(stop: asyncio.Event) -> None:
        await retry_until_done("registering own permissions", attempt, stop, log)

    return run
