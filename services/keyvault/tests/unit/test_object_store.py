"""The local object store: names cannot escape the root, files are private, writes are atomic
(E5)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helios.kernel.errors import InvalidArgumentError, NotFoundError
from helios.keyvault.object_store import LocalObjectStore, ObjectStore, check_name

pytestmark = pytest.mark.unit

BAD_NAMES = [
    "../escape",
    "org/../../escape",
    "org/..",
    "/etc/passwd",
    "org//double",
    "org/",
    "",
    ".hidden",
    "org/.upload-x.tmp",
    "org\\win",
    "org/name with space",
    "org/\x00nul",
    "a" * 129,
]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def _read(store: ObjectStore, name: str) -> bytes:
    return b"".join([chunk async for chunk in store.get_stream(name)])


@pytest.mark.parametrize("name", BAD_NAMES)
def test_e5_unsafe_object_names_are_refused(name: str) -> None:
    """Traversal, absolute paths, empty or hidden segments and odd characters are refused."""
    with pytest.raises(InvalidArgumentError):
        check_name(name)


def test_e5_safe_object_names_pass() -> None:
    """Org / attachment id names pass unchanged."""
    assert check_name("0b6f-org/report.v2_final-1.pdf") == "0b6f-org/report.v2_final-1.pdf"


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_e5_local_store_refuses_unsafe_names_on_every_call(tmp_path: Path, name: str) -> None:
    """put / get / delete / exists with an unsafe name write or read nothing outside the root."""
    store = LocalObjectStore(tmp_path / "objects")
    with pytest.raises(InvalidArgumentError):
        await store.put_stream(name, _chunks(b"x"))
    with pytest.raises(InvalidArgumentError):
        await _read(store, name)
    with pytest.raises(InvalidArgumentError):
        await store.delete(name)
    with pytest.raises(InvalidArgumentError):
        await store.exists(name)
    assert _entries(tmp_path) == []


async def test_e5_local_store_round_trip_private_files(tmp_path: Path) -> None:
    """Bytes come back in chunks of the read size; folders are 0700 and files 0600; a second
    put replaces; delete removes and says whether there was something."""
    root = tmp_path / "objects"
    store = LocalObjectStore(root, read_size=4)
    assert await store.put_stream("org-a/doc", _chunks(b"hello ", b"", b"world")) == 11
    assert await store.exists("org-a/doc")
    assert [c async for c in store.get_stream("org-a/doc")] == [b"hell", b"o wo", b"rld"]
    assert stat.S_IMODE((root / "org-a" / "doc").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "org-a").stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    await store.put_stream("org-a/doc", _chunks(b"v2"))
    assert await _read(store, "org-a/doc") == b"v2"
    assert await store.delete("org-a/doc")
    assert not await store.delete("org-a/doc")
    assert not await store.exists("org-a/doc")
    with pytest.raises(NotFoundError):
        await _read(store, "org-a/doc")
    assert _entries(root / "org-a") == []


async def test_e5_local_store_failed_upload_leaves_nothing(tmp_path: Path) -> None:
    """If the source stream fails midway, no object and no temporary file remain, and an older
    object under the name is untouched."""
    store = LocalObjectStore(tmp_path)
    await store.put_stream("org-a/doc", _chunks(b"old"))

    async def failing() -> AsyncIterator[bytes]:
        yield b"new part"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="went away"):
        await store.put_stream("org-a/doc", failing())
    with pytest.raises(RuntimeError, match="went away"):
        await store.put_stream("org-a/other", failing())
    assert await _read(store, "org-a/doc") == b"old"
    assert not await store.exists("org-a/other")
    assert _entries(tmp_path / "org-a") == ["doc"]


async def test_e5_local_store_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    """A folder symlinked out of the root (planted by someone with disk access) is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "objects"
    root.mkdir()
    (root / "org-a").symlink_to(outside)
    store = LocalObjectStore(root)
    with pytest.raises(InvalidArgumentError):
        await store.put_stream("org-a/doc", _chunks(b"x"))
    assert _entries(outside) == []
