"""RowCipher (E4): per-row secrets under cached data keys, their bounds and their refusals."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helios.kernel.errors import InvalidArgumentError
from helios.kernel.row_secrets import MAGIC, RowCipher

pytestmark = pytest.mark.unit

ORG, OTHER_ORG = "org-a", "org-b"
KEY_ID = "11111111-1111-1111-1111-111111111111"
SECRET = b"+41 79 555 01 02 (a very private number)"


class FakeDataKeyClient:
    """Test double of keyvault's data-key RPCs (no keyvault runs in unit tests): it wraps real
    random data keys with AES-256-GCM under one KEK per key id, bound to (org, table, column) as
    keyvault does, and counts the calls."""

    def __init__(self) -> None:
        self._keks: dict[str, bytes] = {}
        self.generated = 0
        self.unwrapped = 0

    @staticmethod
    def _context(org_id: str, table: str, column: str) -> bytes:
        return "\x00".join((org_id, table, "", column)).encode()

    async def generate(
        self, org_id: str, key_id: str, table: str, column: str
    ) -> tuple[bytes, bytes]:
        await asyncio.sleep(0)  # a real call yields; concurrent callers get to run
        self.generated += 1
        kek = self._keks.setdefault(key_id, AESGCM.generate_key(bit_length=256))
        data_key = os.urandom(32)
        nonce = os.urandom(12)
        wrapped = (
            key_id.encode()
            + nonce
            + AESGCM(kek).encrypt(nonce, data_key, self._context(org_id, table, column))
        )
        return data_key, wrapped

    async def unwrap(self, org_id: str, wrapped: bytes, table: str, column: str) -> bytes:
        await asyncio.sleep(0)
        self.unwrapped += 1
        key_id, nonce, sealed = wrapped[:36].decode(), wrapped[36:48], wrapped[48:]
        try:
            return AESGCM(self._keks[key_id]).decrypt(
                nonce, sealed, self._context(org_id, table, column)
            )
        except (InvalidTag, KeyError, ValueError):
            raise InvalidArgumentError("the data key does not open in this context") from None


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cipher(client: FakeDataKeyClient, **bounds: float) -> RowCipher:
    return RowCipher(client, lambda org_id: KEY_ID, **bounds)  # type: ignore[arg-type]


def _wrapped(blob: bytes) -> bytes:
    (length,) = struct.unpack_from(">H", blob, 4)
    return blob[6 : 6 + length]


async def test_e4_round_trip_in_the_documented_format() -> None:
    """E4: a value comes back unchanged; the stored form is HRS1 | uint16 length | wrapped key |
    12-byte nonce | ciphertext + 16-byte tag and does not contain the plaintext."""
    cipher = _cipher(FakeDataKeyClient())
    for plaintext in (SECRET, b"", bytes(range(256)) * 40):
        blob = await cipher.encrypt(ORG, "contacts", "phone", "42", plaintext)
        assert blob.startswith(MAGIC)
        wrapped = _wrapped(blob)
        assert len(blob) == 4 + 2 + len(wrapped) + 12 + len(plaintext) + 16
        if plaintext:
            assert plaintext not in blob
        assert await cipher.decrypt(ORG, "contacts", "phone", "42", blob) == plaintext
    unicode_row = await cipher.encrypt(ORG, "contacts", "phone", "zürich/7", SECRET)
    assert await cipher.decrypt(ORG, "contacts", "phone", "zürich/7", unicode_row) == SECRET


@pytest.mark.parametrize(
    ("org_id", "table", "column", "row_id"),
    [
        (ORG, "contacts", "phone", "43"),
        (ORG, "contacts", "email", "42"),
        (ORG, "accounts", "phone", "42"),
        (OTHER_ORG, "contacts", "phone", "42"),
        (ORG, "contactsp", "hone", "42"),
        (ORG, "contacts", "phone4", "2"),
    ],
)
async def test_e4_a_value_moved_elsewhere_is_refused(
    org_id: str, table: str, column: str, row_id: str
) -> None:
    """E4: a value copied to another row, column, table or org (also with the boundaries between
    the parts shifted) fails with InvalidArgumentError whose message holds no plaintext; this is
    so both with the writer's warm cache and in a cold replica."""
    client = FakeDataKeyClient()
    writer = _cipher(client)
    blob = await writer.encrypt(ORG, "contacts", "phone", "42", SECRET)
    await writer.encrypt(org_id, table, column, "1", b"warm the other slot")
    for cipher in (writer, _cipher(client)):
        with pytest.raises(InvalidArgumentError) as refused:
            await cipher.decrypt(org_id, table, column, row_id, blob)
        assert SECRET.decode() not in str(refused.value)
        assert "moved" in refused.value.message


async def test_e4_many_rows_share_one_generated_data_key() -> None:
    """E4: 500 rows of a column, 200 of them concurrently on a cold column, cost one
    GenerateDataKey per column; decrypting them in the same process costs no unwrap."""
    client = FakeDataKeyClient()
    cipher = _cipher(client)
    blobs = [await cipher.encrypt(ORG, "contacts", "phone", str(i), b"v%d" % i) for i in range(300)]
    assert client.generated == 1
    concurrent = await asyncio.gather(
        *(cipher.encrypt(ORG, "contacts", "email", str(i), b"e%d" % i) for i in range(200))
    )
    assert client.generated == 2
    assert len({_wrapped(blob) for blob in concurrent}) == 1
    for i, blob in enumerate(blobs):
        assert await cipher.decrypt(ORG, "contacts", "phone", str(i), blob) == b"v%d" % i
    assert client.unwrapped == 0


async def test_e4_a_cold_replica_unwraps_each_data_key_once_even_concurrently() -> None:
    """E4: a fresh RowCipher (another replica) decrypts many rows with one DecryptDataKey, also
    when the rows are read concurrently."""
    client = FakeDataKeyClient()
    writer = _cipher(client)
    blobs = [await writer.encrypt(ORG, "t", "c", str(i), b"%d" % i) for i in range(100)]
    reader = _cipher(client)
    opened = await asyncio.gather(
        *(reader.decrypt(ORG, "t", "c", str(i), blob) for i, blob in enumerate(blobs))
    )
    assert opened == [b"%d" % i for i in range(100)]
    assert client.unwrapped == 1


async def test_e4_data_key_rotates_by_age() -> None:
    """E4: a data key encrypts for less than max_age seconds; then a new one is generated. The
    unwrapped keys of the reader also expire after max_age and are unwrapped again."""
    clock = Clock()
    client = FakeDataKeyClient()
    cipher = RowCipher(client, lambda org_id: KEY_ID, max_age=300, clock=clock)
    first = await cipher.encrypt(ORG, "t", "c", "1", b"one")
    clock.now += 299.9
    second = await cipher.encrypt(ORG, "t", "c", "2", b"two")
    assert client.generated == 1
    assert _wrapped(first) == _wrapped(second)
    clock.now += 0.1
    third = await cipher.encrypt(ORG, "t", "c", "3", b"three")
    assert client.generated == 2
    assert _wrapped(third) != _wrapped(first)

    reader = RowCipher(client, lambda org_id: KEY_ID, max_age=300, clock=clock)
    assert await reader.decrypt(ORG, "t", "c", "1", first) == b"one"
    assert await reader.decrypt(ORG, "t", "c", "2", second) == b"two"
    assert client.unwrapped == 1
    clock.now += 300
    assert await reader.decrypt(ORG, "t", "c", "1", first) == b"one"
    assert client.unwrapped == 2


async def test_e4_data_key_rotates_by_uses() -> None:
    """E4: a data key encrypts at most max_uses values."""
    client = FakeDataKeyClient()
    cipher = _cipher(client, max_uses=3)
    blobs = [await cipher.encrypt(ORG, "t", "c", str(i), b"x") for i in range(7)]
    assert client.generated == 3
    assert [len({_wrapped(b) for b in blobs[i : i + 3]}) for i in (0, 3)] == [1, 1]
    assert _wrapped(blobs[2]) != _wrapped(blobs[3]) != _wrapped(blobs[6])


async def test_e4_data_key_rotates_by_bytes() -> None:
    """E4: a data key encrypts at most max_bytes plaintext bytes (a single larger value still
    gets a fresh key of its own)."""
    client = FakeDataKeyClient()
    cipher = _cipher(client, max_bytes=100)
    sizes = [40, 40, 40, 20, 100, 1]
    blobs = [await cipher.encrypt(ORG, "t", "c", str(i), b"x" * n) for i, n in enumerate(sizes)]
    keys = [_wrapped(blob) for blob in blobs]
    assert keys[0] == keys[1] != keys[2] == keys[3] != keys[4] != keys[5]
    assert client.generated == 4
    big = await cipher.encrypt(ORG, "t", "c", "big", b"y" * 500)
    assert await cipher.decrypt(ORG, "t", "c", "big", big) == b"y" * 500


async def test_e4_old_values_still_decrypt_after_rotation() -> None:
    """E4: values written under earlier data keys decrypt after any number of rotations, in the
    writer and in a cold replica."""
    clock = Clock()
    client = FakeDataKeyClient()
    writer = RowCipher(client, lambda org_id: KEY_ID, max_uses=2, max_age=60, clock=clock)
    blobs = {}
    for i in range(10):
        blobs[str(i)] = await writer.encrypt(ORG, "t", "c", str(i), b"value %d" % i)
        clock.now += 7
    assert client.generated == 5
    assert len({_wrapped(blob) for blob in blobs.values()}) == 5
    reader = RowCipher(client, lambda org_id: KEY_ID, clock=clock)
    for cipher in (writer, reader):
        for row, blob in blobs.items():
            assert await cipher.decrypt(ORG, "t", "c", row, blob) == b"value " + row.encode()
    # The writer unwraps only its first key (70 s old, past max_age); the cold reader all five.
    assert client.unwrapped == 1 + 5


async def test_e4_a_new_key_for_the_org_takes_effect_at_once() -> None:
    """E4: key_for is asked on every encryption; a changed key id gets its own data key, and
    values under the old one still decrypt."""
    client = FakeDataKeyClient()
    current = {"key": KEY_ID}
    cipher = RowCipher(client, lambda org_id: current["key"])
    before = await cipher.encrypt(ORG, "t", "c", "1", b"before")
    current["key"] = "22222222-2222-2222-2222-222222222222"
    after = await cipher.encrypt(ORG, "t", "c", "2", b"after")
    assert client.generated == 2
    assert _wrapped(before) != _wrapped(after)
    assert await cipher.decrypt(ORG, "t", "c", "1", before) == b"before"


async def test_e4_least_recently_used_data_keys_are_evicted() -> None:
    """E4: at most max_keys data keys are cached; the least recently used goes first."""
    client = FakeDataKeyClient()
    cipher = _cipher(client, max_keys=2)
    await cipher.encrypt(ORG, "t", "a", "1", b"x")
    await cipher.encrypt(ORG, "t", "b", "1", b"x")
    await cipher.encrypt(ORG, "t", "a", "2", b"x")  # a is now the most recently used
    await cipher.encrypt(ORG, "t", "c", "1", b"x")  # evicts b
    assert client.generated == 3
    await cipher.encrypt(ORG, "t", "a", "3", b"x")
    assert client.generated == 3
    await cipher.encrypt(ORG, "t", "b", "2", b"x")
    assert client.generated == 4


async def test_e4_tampered_or_truncated_values_are_refused_cleanly() -> None:
    """E4: a flipped byte anywhere, a truncation, a foreign magic or a bad length is refused
    with InvalidArgumentError, never a plaintext."""
    client = FakeDataKeyClient()
    cipher = _cipher(client)
    blob = await cipher.encrypt(ORG, "contacts", "phone", "42", SECRET)
    for position in range(len(blob)):
        flipped = bytearray(blob)
        flipped[position] ^= 0x01
        with pytest.raises(InvalidArgumentError) as refused:
            await cipher.decrypt(ORG, "contacts", "phone", "42", bytes(flipped))
        assert SECRET.decode() not in str(refused.value)
    for cut in (0, 3, 5, 6, 30, len(blob) - 17, len(blob) - 1):
        with pytest.raises(InvalidArgumentError):
            await cipher.decrypt(ORG, "contacts", "phone", "42", blob[:cut])
    zero_length = blob[:4] + b"\x00\x00" + blob[6:]
    with pytest.raises(InvalidArgumentError):
        await cipher.decrypt(ORG, "contacts", "phone", "42", zero_length)
    assert await cipher.decrypt(ORG, "contacts", "phone", "42", blob) == SECRET


async def test_e4_missing_or_unencodable_context_is_refused() -> None:
    """E4: table, column and row must be given and be valid UTF-8; bounds must be positive."""
    cipher = _cipher(FakeDataKeyClient())
    for table, column, row in (
        ("", "c", "1"),
        ("t", "", "1"),
        ("t", "c", ""),
        ("t", "c", "\ud800"),
    ):
        with pytest.raises(InvalidArgumentError):
            await cipher.encrypt(ORG, table, column, row, b"x")
    with pytest.raises(ValueError, match="positive"):
        _cipher(FakeDataKeyClient(), max_uses=0)
