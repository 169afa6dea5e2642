"""Startup steps run before a service binds: no call is served before they are done (C1, P1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helios.kernel.principal import AssertionVerifier, load_public_key
from helios.kernel.server import GrpcService
from helios.kernel.testing.servers import is_listening
from helios.kernel.tls import CertFiles


def _service(pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]) -> GrpcService:
    return GrpcService(
        "authz", pki["authz"], AssertionVerifier([load_public_key(principal_keys[1])])
    )


async def test_c1_startup_steps_run_in_order_before_the_port_is_bound(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> None:
    """C1: every startup step is awaited, in order, before the server binds and serves."""
    service = _service(pki, principal_keys)
    seen: list[str] = []

    async def load_config() -> None:
        seen.append("config")

    async def warm_cache() -> None:
        seen.append("cache")

    service.add_startup(load_config)
    service.add_startup(warm_cache)
    port = await service.start("127.0.0.1", 0)
    try:
        assert seen == ["config", "cache"]
        assert is_listening("127.0.0.1", port)
    finally:
        await service.stop(0)


async def test_c1_failing_startup_step_fails_start_and_binds_nothing(
    pki: dict[str, CertFiles], principal_keys: tuple[Path, Path]
) -> None:
    """C1: a startup step that fails (database down) fails `start`: the process never serves
    without the state the step loads."""
    service = _service(pki, principal_keys)

    async def unreachable() -> None:
        raise ConnectionError("database is down")

    service.add_startup(unreachable)
    with pytest.raises(ConnectionError, match="database is down"):
        await service.start("127.0.0.1", 0)
    assert service.port == 0
