"""pytest plugin for Helios tests: real PostgreSQL and NATS, per-test savepoints, mTLS and keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from helios.kernel.db import create_engine
from helios.kernel.principal import write_keypair
from helios.kernel.testing.servers import ThrowawayNats, ThrowawayPostgres, is_listening
from helios.kernel.tls import CertFiles, ensure_dev_pki

__all__ = [
    "SERVICES",
    "database_url",
    "db_connection",
    "db_session",
    "nats_url",
    "pki",
    "principal_keys",
    "server_url",
]

SERVICES = ["identity", "authz", "ai-broker", "audit", "keyvault", "gateway", "devstack"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier from its folder (tests/unit, tests/integration, tests/e2e)."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("unit", "integration", "e2e"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Superuser URL of a PostgreSQL server: HELIOS_TEST_DATABASE_URL, else the one listening on
    127.0.0.1:5432, else a throwaway cluster for this test session."""
    configured = os.environ.get("HELIOS_TEST_DATABASE_URL")
    if configured:
        yield configured
    elif is_listening("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
    else:
        cluster = ThrowawayPostgres().start()
        try:
            yield cluster.url
        finally:
            cluster.stop()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session (dropped at the end)."""
    name = f"helios_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A NATS server with JetStream: HELIOS_TEST_NATS_URL, else 127.0.0.1:4222 when it listens,
    else a throwaway one for this test session."""
    configured = os.environ.get("HELIOS_TEST_NATS_URL")
    if configured:
        yield configured
    elif is_listening("127.0.0.1", 4222):
        yield "nats://127.0.0.1:4222"
    else:
        server = ThrowawayNats().start()
        try:
            yield server.url
        finally:
            server.destroy()


@pytest.fixture
async def db_connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back after the test."""
    engine = create_engine(database_url, pool_size=1)
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()
    await engine.dispose()


@pytest.fixture
def db_session(db_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions bound to the test's connection: their commits become savepoints, and everything
    is rolled back when the test ends."""
    return async_sessionmaker(
        bind=db_connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertFiles]:
    """A development CA and a certificate for every Helios identity plus a `stranger` signed by
    another CA (for refusal tests)."""
    base = tmp_path_factory.mktemp("pki")
    files = ensure_dev_pki(base / "helios", [*SERVICES, "client"])
    other = ensure_dev_pki(base / "other", ["gateway"])
    files["stranger"] = other["gateway"]
    return files


@pytest.fixture(scope="session")
def principal_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private, public) PEM files of an Ed25519 principal-assertion key pair."""
    base = tmp_path_factory.mktemp("principal")
    private, public = base / "principal.key", base / "principal.pub"
    write_keypair(private, public)
    return private, public
