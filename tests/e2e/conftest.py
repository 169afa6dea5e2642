"""The whole stack, started the way `make up` starts it, shared by the end-to-end journeys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from helios.devstack.stack import Stack, StackOptions


@pytest.fixture(scope="session")
def stack(server_url: str) -> Iterator[Stack]:
    """Six processes over a fresh database and a NATS of our own (so tests may stop it)."""
    name = f"helios_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{server_url.rsplit('/', 1)[0]}/{name}"
    running = Stack(
        StackOptions(database_url=database_url, http_port=0, cheap_argon2=True, log_level="DEBUG")
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(stack: Stack) -> Iterator[psycopg.Connection]:
    """A superuser connection to the stack's database, for looking at what was written."""
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        yield conn
