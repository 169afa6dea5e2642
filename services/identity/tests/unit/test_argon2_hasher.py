"""argon2id password hashing with parameters recorded per hash (A1); cheap parameters here."""

from __future__ import annotations

import pytest

from helios.identity.argon2_hasher import Argon2Hasher

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hasher() -> Argon2Hasher:
    return Argon2Hasher(time_cost=1, memory_kib=8192, parallelism=1)


async def test_a1_hash_is_argon2id_phc_string_with_parameters(hasher: Argon2Hasher) -> None:
    stored = await hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert PASSWORD not in stored


async def test_a1_hashes_are_salted(hasher: Argon2Hasher) -> None:
    assert await hasher.hash(PASSWORD) != await hasher.hash(PASSWORD)


async def test_a1_correct_password_verifies(hasher: Argon2Hasher) -> None:
    stored = await hasher.hash(PASSWORD)
    assert await hasher.verify(stored, PASSWORD) is True


async def test_a1_wrong_password_refused(hasher: Argon2Hasher) -> None:
    stored = await hasher.hash(PASSWORD)
    assert await hasher.verify(stored, PASSWORD + "!") is False
    assert await hasher.verify(stored, "") is False


async def test_a1_unicode_password_round_trips(hasher: Argon2Hasher) -> None:
    password = "pässwörd-🔑-密码-long"
    stored = await hasher.hash(password)
    assert await hasher.verify(stored, password) is True
    assert await hasher.verify(stored, "passwörd-🔑-密码-long") is False


@pytest.mark.parametrize(
    "stored",
    ["", "not a hash", "$argon2id$v=19$m=8192,t=1,p=1$broken", "$2b$12$abcdefghijklmnopqrstuv"],
)
async def test_a1_unreadable_stored_hash_refused(hasher: Argon2Hasher, stored: str) -> None:
    assert await hasher.verify(stored, PASSWORD) is False


async def test_a1_hash_with_other_parameters_needs_rehash(hasher: Argon2Hasher) -> None:
    stronger = Argon2Hasher(time_cost=2, memory_kib=8192, parallelism=1)
    old = await hasher.hash(PASSWORD)
    assert hasher.needs_rehash(old) is False
    assert stronger.needs_rehash(old) is True
    assert await stronger.verify(old, PASSWORD) is True
    assert stronger.needs_rehash(await stronger.hash(PASSWORD)) is False


async def test_a1_burn_verifies_against_dummy_and_returns_nothing(hasher: Argon2Hasher) -> None:
    assert await hasher.burn(PASSWORD) is None
