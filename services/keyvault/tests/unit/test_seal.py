"""The local seal provider: a root key file or a passphrase-derived root key (E7), cheap argon2."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from helios.keyvault.ports import SealProvider
from helios.keyvault.seal import LocalSeal, SealError

pytestmark = pytest.mark.unit

SECRET = b"kek material \x00\x01\x02 that must stay secret"
CONTEXT = b"helios.keyvault.kek|org-a|key-1|v1"
PASSPHRASE = "correct horse battery staple"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _passphrase_seal(passphrase: str, state_dir: Path) -> LocalSeal:
    return LocalSeal.from_passphrase(
        passphrase, state_dir, time_cost=1, memory_kib=8192, parallelism=1
    )


def test_e7_local_seal_is_a_seal_provider(tmp_path: Path) -> None:
    provider: SealProvider = LocalSeal.from_key_file(tmp_path / "root.key")
    assert provider.name == "local"
    blob = provider.wrap(SECRET, CONTEXT)
    assert SECRET not in blob
    assert provider.unwrap(blob, CONTEXT) == SECRET


def test_e7_key_file_created_0600_with_32_bytes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "root.key"
    LocalSeal.from_key_file(path)
    assert _mode(path) == 0o600
    assert path.stat().st_size == 32
    assert _mode(path.parent) & 0o077 == 0


def test_e7_key_file_reused_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    first = LocalSeal.from_key_file(path)
    key = path.read_bytes()
    second = LocalSeal.from_key_file(path)
    assert path.read_bytes() == key
    assert second.unwrap(first.wrap(SECRET, CONTEXT), CONTEXT) == SECRET
    assert first.unwrap(second.wrap(SECRET, CONTEXT), CONTEXT) == SECRET


def test_e7_another_key_file_cannot_unwrap(tmp_path: Path) -> None:
    blob = LocalSeal.from_key_file(tmp_path / "a.key").wrap(SECRET, CONTEXT)
    with pytest.raises(SealError, match="cannot unwrap"):
        LocalSeal.from_key_file(tmp_path / "b.key").unwrap(blob, CONTEXT)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_e7_key_file_accessible_by_others_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "root.key"
    LocalSeal.from_key_file(path)
    key = path.read_bytes()
    path.chmod(mode)
    with pytest.raises(SealError, match="group and others must have no access") as caught:
        LocalSeal.from_key_file(path)
    assert key.hex() not in str(caught.value)
    assert path.read_bytes() == key  # left alone, not replaced


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_e7_key_file_of_wrong_size_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "root.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"k" * size)
    os.close(fd)
    with pytest.raises(SealError, match=f"has {size} bytes; expected 32") as caught:
        LocalSeal.from_key_file(path)
    assert "kkkk" not in str(caught.value)


def test_e7_key_file_that_is_a_directory_refused(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.mkdir(mode=0o700)
    with pytest.raises(SealError, match="not a regular file"):
        LocalSeal.from_key_file(path)


def test_e7_unwrap_with_wrong_context_fails(tmp_path: Path) -> None:
    seal = LocalSeal.from_key_file(tmp_path / "root.key")
    blob = seal.wrap(SECRET, CONTEXT)
    for context in (b"", CONTEXT + b"x", b"helios.keyvault.kek|org-b|key-1|v1"):
        with pytest.raises(SealError) as caught:
            seal.unwrap(blob, context)
        assert SECRET.decode(errors="ignore") not in str(caught.value)


def test_e7_tampered_or_truncated_blob_fails(tmp_path: Path) -> None:
    seal = LocalSeal.from_key_file(tmp_path / "root.key")
    blob = seal.wrap(SECRET, CONTEXT)
    assert blob[:12] != seal.wrap(SECRET, CONTEXT)[:12]  # fresh random nonce prefix
    assert len(blob) == 12 + len(SECRET) + 16
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(SealError):
            seal.unwrap(bytes(tampered), CONTEXT)
    for length in range(len(blob)):
        with pytest.raises(SealError):
            seal.unwrap(blob[:length], CONTEXT)


def test_e7_root_key_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    seal = LocalSeal.from_key_file(path)
    key = path.read_bytes()
    assert key.hex() not in repr(seal)
    assert repr(key) not in repr(seal)


def test_e7_passphrase_seal_reopens_with_the_same_passphrase(tmp_path: Path) -> None:
    first = _passphrase_seal(PASSPHRASE, tmp_path)
    blob = first.wrap(SECRET, CONTEXT)
    second = _passphrase_seal(PASSPHRASE, tmp_path)
    assert second.name == "local"
    assert second.unwrap(blob, CONTEXT) == SECRET


def test_e7_passphrase_seal_state_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _passphrase_seal(PASSPHRASE, state)
    salt, check = state / "seal.salt", state / "seal.check"
    assert salt.stat().st_size == 16
    assert _mode(salt) == 0o600
    assert _mode(check) == 0o600
    assert PASSPHRASE.encode() not in check.read_bytes()
    before = (salt.read_bytes(), check.read_bytes())
    _passphrase_seal(PASSPHRASE, state)
    assert (salt.read_bytes(), check.read_bytes()) == before


def test_e7_wrong_passphrase_fails_at_construction(tmp_path: Path) -> None:
    _passphrase_seal(PASSPHRASE, tmp_path)
    with pytest.raises(SealError) as caught:
        _passphrase_seal("correct horse battery stapler", tmp_path)
    assert str(caught.value) == "the passphrase does not open this keyvault (seal check failed)"
    assert "stapler" not in str(caught.value)


def test_e7_changed_argon2_parameters_fail_like_a_wrong_passphrase(tmp_path: Path) -> None:
    _passphrase_seal(PASSPHRASE, tmp_path)
    with pytest.raises(SealError, match="seal check failed"):
        LocalSeal.from_passphrase(PASSPHRASE, tmp_path, time_cost=2, memory_kib=8192, parallelism=1)


def test_e7_empty_passphrase_refused(tmp_path: Path) -> None:
    with pytest.raises(SealError, match="empty"):
        _passphrase_seal("", tmp_path)
    assert not (tmp_path / "seal.salt").exists()


def test_e7_passphrase_seal_unwrap_with_wrong_context_fails(tmp_path: Path) -> None:
    seal = _passphrase_seal(PASSPHRASE, tmp_path)
    blob = seal.wrap(SECRET, CONTEXT)
    assert seal.unwrap(blob, CONTEXT) == SECRET
    with pytest.raises(SealError, match="cannot unwrap"):
        seal.unwrap(blob, b"another context")


def test_e7_same_passphrase_with_another_salt_is_another_root_key(tmp_path: Path) -> None:
    blob = _passphrase_seal(PASSPHRASE, tmp_path / "a").wrap(SECRET, CONTEXT)
    with pytest.raises(SealError):
        _passphrase_seal(PASSPHRASE, tmp_path / "b").unwrap(blob, CONTEXT)


def test_e7_lost_salt_reported_instead_of_a_new_root_key(tmp_path: Path) -> None:
    _passphrase_seal(PASSPHRASE, tmp_path)
    (tmp_path / "seal.salt").unlink()
    with pytest.raises(SealError, match=r"seal\.salt is missing"):
        _passphrase_seal(PASSPHRASE, tmp_path)
    assert not (tmp_path / "seal.salt").exists()


def test_e7_passphrase_is_nfc_normalised(tmp_path: Path) -> None:
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    blob = _passphrase_seal(composed, tmp_path).wrap(SECRET, CONTEXT)
    assert _passphrase_seal(decomposed, tmp_path).unwrap(blob, CONTEXT) == SECRET


def test_e7_root_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LocalSeal(b"\x00" * 16)
