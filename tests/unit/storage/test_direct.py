"""Direct writes and reads (past the page cache): every byte lands and comes back, on file
systems and platforms that take direct I/O and on those that do not."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from soko.errors import StoreError
from soko.storage import copying, direct

CHUNK = copying.CHUNK
ALIGN = direct.ALIGN
SIZES = [0, 1, ALIGN, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 3 * ALIGN + 5]
O_DIRECT = getattr(os, "O_DIRECT", 0)


def takes_direct_io(folder: Path) -> bool:
    """Whether the file system at *folder* takes a direct write (tmpfs and some others
    refuse it; Linux's ext4, where CI runs, takes it)."""
    if not O_DIRECT:
        return False
    path = folder / "probe"
    buffer = direct.aligned_buffer(ALIGN)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | O_DIRECT, 0o644)
    except OSError:
        return False
    try:
        os.pwrite(fd, buffer, 0)
    except OSError:
        return False
    finally:
        os.close(fd)
        path.unlink()
    return True


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int, bool]]]:
    """The (offset, count, direct) of each write the copies make."""
    calls: list[tuple[int, int, bool]] = []
    pwrite = os.pwrite

    def spy(fd: int, data: memoryview, offset: int) -> int:
        is_direct = bool(O_DIRECT and fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT)
        written = pwrite(fd, data, offset)
        calls.append((offset, written, is_direct))
        return written

    monkeypatch.setattr(os, "pwrite", spy)
    yield calls


def copy(tmp_path: Path, stream: object) -> tuple[int, bytes, bytes]:
    """copy_stream with direct writes into a fresh file: (size, stored bytes, MD5)."""
    hasher = hashlib.md5()
    dest_path = tmp_path / "dest.bin"
    dest = os.open(dest_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        size = copying.copy_stream(stream, dest, hasher, direct=True)  # type: ignore[arg-type]
    finally:
        os.close(dest)
    return size, dest_path.read_bytes(), hasher.digest()


@pytest.mark.parametrize("size", SIZES)
def test_a_direct_copy_stores_and_hashes_every_byte(
    tmp_path: Path, writes: list[tuple[int, int, bool]], size: int
) -> None:
    data = os.urandom(size)
    assert copy(tmp_path, io.BytesIO(data)) == (size, data, hashlib.md5(data).digest())
    # Whole chunks go past the page cache where the file system takes it; a tail that is
    # not a multiple of the block size goes through it.
    whole = size // CHUNK
    expected_direct = takes_direct_io(tmp_path)
    assert [d for _, n, d in writes if n == CHUNK][:whole] == [expected_direct] * whole
    assert not any(d for _, n, d in writes if n % ALIGN)


def test_short_reads_from_the_stream_are_written_through_the_page_cache(
    tmp_path: Path, writes: list[tuple[int, int, bool]]
) -> None:
    data = os.urandom(3 * CHUNK + 1)

    class Trickle(io.BytesIO):
        def readinto(self, buffer: object) -> int:
            view = memoryview(buffer)  # type: ignore[arg-type]
            return super().readinto(view[:5000])

    assert copy(tmp_path, Trickle(data))[1] == data
    assert all(offset % ALIGN == 0 or not is_direct for offset, _, is_direct in writes)


def test_without_direct_io_the_page_cache_writes_everything(
    tmp_path: Path, writes: list[tuple[int, int, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct, "_O_DIRECT", 0)  # a platform without O_DIRECT
    data = os.urandom(2 * CHUNK + 7)
    assert copy(tmp_path, io.BytesIO(data))[1:] == (data, hashlib.md5(data).digest())
    assert not any(is_direct for _, _, is_direct in writes)


def test_a_file_system_refusing_direct_writes_gets_them_through_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pwrite = os.pwrite
    refused: list[int] = []

    def refuse_direct(fd: int, data: memoryview, offset: int) -> int:
        if O_DIRECT and fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", refuse_direct)
    data = os.urandom(3 * CHUNK + 11)
    assert copy(tmp_path, io.BytesIO(data))[1:] == (data, hashlib.md5(data).digest())
    assert len(refused) <= 1  # tried once at most, then never again for the file


def test_a_full_disk_during_a_direct_write_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(StoreError, match="Cannot write to the store"):
        copy(tmp_path, io.BytesIO(os.urandom(CHUNK)))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("available", [True, False], ids=["o-direct", "no-o-direct"])
def test_a_direct_reader_reads_every_byte_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, available: bool
) -> None:
    if not available:
        monkeypatch.setattr(direct, "_O_DIRECT", 0)
    data = os.urandom(size)
    path = tmp_path / "blob"
    path.write_bytes(data)
    pieces: list[bytes] = []
    with direct.DirectReader(str(path), chunk=CHUNK, piece=1024 * 1024) as reader:
        while chunk := reader.read_pieces():
            assert all(len(p) <= 1024 * 1024 for p in chunk)
            pieces.extend(chunk)
    assert b"".join(pieces) == data


def test_aligned_buffers_are_page_aligned_and_reused() -> None:
    import ctypes

    view = direct.aligned_buffer(CHUNK)
    assert direct.aligned_buffer(CHUNK) is view
    address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    assert address % ALIGN == 0 and len(view) == CHUNK
