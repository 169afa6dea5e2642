"""Async SQLAlchemy engines over psycopg 3, with an optional least-privilege role per connection."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Executable, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from helios.kernel.errors import DomainError

__all__ = ["create_engine", "insert_unique", "normalize_url", "session_factory"]

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def normalize_url(url: str) -> str:
    """The URL with the psycopg 3 driver (`postgresql://` and `postgres://` are accepted)."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    else:
        raise ValueError(f"not a PostgreSQL URL (driver {parsed.drivername!r})")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, role: str = "", *, pool_size: int = 5) -> AsyncEngine:
    """An engine whose connections `SET ROLE role` first (when given), so a service works with
    only its own grants; pre-ping makes it survive a PostgreSQL restart."""
    engine = create_async_engine(normalize_url(url), pool_pre_ping=True, pool_size=pool_size)
    if role:
        if not _ROLE.match(role):
            raise ValueError(f"invalid role name {role!r}")

        @event.listens_for(engine.sync_engine, "connect")
        def _set_role(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET ROLE {role}")  # role validated above; SET takes no parameters
            cursor.close()
            dbapi_connection.commit()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def insert_unique(
    session: AsyncSession, statement: Executable, conflict: DomainError
) -> None:
    """Run an INSERT inside a savepoint of the caller's transaction; a constraint violation
    raises `conflict` and leaves the transaction usable. Not chained: the driver's message
    carries the statement's parameters (hashes, sealed values)."""
    try:
        async with session.begin_nested():
            await session.execute(statement)
    except IntegrityError:
        raise conflict from None
