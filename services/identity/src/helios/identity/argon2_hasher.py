"""argon2id password hashing (argon2-cffi), off the event loop, parameters recorded per hash."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Argon2Hasher"]


class Argon2Hasher:
    """Implements the PasswordHasher port. Verification compares in constant time (argon2-cffi);
    the work runs in a worker thread so the event loop keeps serving."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy = self._hasher.hash("dummy password for unknown accounts")

    async def hash(self, password: str) -> str:
        """A PHC string `$argon2id$v=19$m=...,t=...,p=...$salt$hash`."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        """True on a match; False on a mismatch or an unreadable stored hash."""
        return await asyncio.to_thread(self._verify, stored, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` used other parameters than this hasher's."""
        return self._hasher.check_needs_rehash(stored)

    async def burn(self, password: str) -> None:
        """One verification against a dummy hash, so unknown accounts take as long as known ones."""
        await self.verify(self._dummy, password)
